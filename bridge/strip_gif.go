package bridge

import "bytes"

// GIF block introducers and extension labels (GIF89a, sections 17-27).
const (
	gifImage     = 0x2C
	gifExtension = 0x21
	gifTrailer   = 0x3B

	gifPlainText      = 0x01
	gifGraphicControl = 0xF9
	gifComment        = 0xFE
	gifApplication    = 0xFF
)

// isGIF reports whether data starts with one of the two signatures decoders accept. Anything else
// beginning with "GIF" is no image any decoder shows, and is passed on like other data.
func isGIF(data []byte) bool {
	return bytes.HasPrefix(data, []byte("GIF87a")) || bytes.HasPrefix(data, []byte("GIF89a"))
}

// stripGIF keeps a GIF's header, logical screen descriptor and global colour table, then every
// block needed to draw and animate it, copied as raw bytes: image descriptors with their local
// colour table and LZW data, Graphic Control Extensions (delays, disposal, transparency), Plain
// Text Extensions (text drawn on the canvas: part of the picture, like pixels) and the NETSCAPE2.0
// and ANIMEXTS1.0 Application Extensions (loop count). It ends at the trailer. Dropped: Comment
// Extensions (a name, a tool, a place), every other Application Extension (XMP, ICC profiles,
// ImageMagick's IPTC and 8BIM blocks, vendor data), extensions of unknown label, and whatever
// follows the trailer.
//
// The ICC profile ("ICCRGBG1012") is dropped here although JPEG, PNG and WebP keep theirs: few
// decoders read one in a GIF (Go's and most viewers ignore it, so dropping it changes how the GIF
// looks only in the few that do), a GIF's palette is nearly always meant as sRGB already, and a
// profile in a GIF is rare enough to single out the tool, or the calibrated screen, it came from.
//
// A GIF whose blocks cannot be followed to the trailer is an error, as a JPEG without EOI or a PNG
// without IEND is, and for the same reason: what the walk could not reach may hold metadata, and
// image/gif refuses such a file too. That includes a GIF cut before its trailer, which some
// browsers still show: relaying it would mean guessing where its last block ends.
//
// Blocks are parsed whole before any byte is written, and a kept block is written no further than
// where it was read: out may be in's own storage (stripInPlace).
func stripGIF(out, in []byte) ([]byte, error) {
	const screen = 13 // signature and version, logical screen descriptor
	if len(in) < screen {
		return nil, badImage("gif: truncated header")
	}
	i := screen + colorTableSize(in[10])
	if i > len(in) {
		return nil, badImage("gif: truncated global colour table")
	}
	out = append(out, in[:i]...)
	for {
		if i >= len(in) {
			return nil, badImage("gif: no trailer")
		}
		start := i
		var keep bool
		switch in[i] {
		case gifTrailer:
			return append(out, gifTrailer), nil // anything after the trailer is not part of the image
		case gifImage:
			i++
			if i+9 > len(in) {
				return nil, badImage("gif: truncated image descriptor at %d", start)
			}
			i += 9 + colorTableSize(in[i+8])
			if i >= len(in) { // the local colour table, then the LZW minimum code size
				return nil, badImage("gif: truncated image at %d", start)
			}
			end, err := gifSubBlocks(in, i+1)
			if err != nil {
				return nil, err
			}
			i, keep = end, true
		case gifExtension:
			if i+1 >= len(in) {
				return nil, badImage("gif: truncated extension at %d", start)
			}
			end, k, err := gifExtensionBlock(in, i+2, in[i+1])
			if err != nil {
				return nil, err
			}
			i, keep = end, k
		default:
			return nil, badImage("gif: unknown block %#x at %d", in[i], i)
		}
		if keep {
			out = append(out, in[start:i]...)
		}
	}
}

// colorTableSize is the size in bytes of the colour table that a screen or image descriptor's
// packed field announces: 3 × 2^(n+1) when its top bit is set.
func colorTableSize(packed byte) int {
	if packed&0x80 == 0 {
		return 0
	}
	return 3 << (packed&0x07 + 1)
}

// gifSubBlocks follows the data sub-blocks starting at i (each a length byte then that many bytes)
// and returns where the block terminator, a zero length, ends.
func gifSubBlocks(in []byte, i int) (int, error) {
	for {
		if i >= len(in) {
			return 0, badImage("gif: no block terminator")
		}
		n := int(in[i])
		if n == 0 {
			return i + 1, nil
		}
		if n >= len(in)-i {
			return 0, badImage("gif: sub-block length %d at %d", n, i)
		}
		i += 1 + n
	}
}

// gifExtensionBlock follows the extension with label whose sub-blocks start at i, and returns where
// it ends and whether it is kept.
//
// Every extension is framed by the same sub-blocks, XMP's included: its packet is raw text, not
// framed, but each of its bytes read as a length hops forward through the packet into the 258-byte
// "magic trailer" (0x01, 0xFF down to 0x01, 0x00, then the terminator 0x00), whose bytes all lead
// to that terminator, so a reader that knows nothing of XMP still skips it whole.
//
// The extensions that are kept must have the first sub-block the spec gives them: a reader (image/gif
// is one) that reads it as a fixed-size field would otherwise part ways with the sub-block framing
// and could take what follows for blocks, or blocks for data, differently from this walk.
func gifExtensionBlock(in []byte, i int, label byte) (end int, keep bool, err error) {
	first := -1 // the first sub-block's length; -1 at the end of the data
	if i < len(in) {
		first = int(in[i])
	}
	switch label {
	case gifGraphicControl:
		// Block size 4, packed fields, delay, transparent index, terminator: nothing else.
		if first != 4 || i+6 > len(in) || in[i+5] != 0 {
			return 0, false, badImage("gif: graphic control extension at %d", i-2)
		}
		return i + 6, true, nil
	case gifPlainText:
		// Block size 12 (text grid position and size, cell size, colours), then the text.
		if first != 12 {
			return 0, false, badImage("gif: plain text extension at %d", i-2)
		}
		keep = true
	case gifApplication:
		// An 8-byte identifier and a 3-byte authentication code. An empty first sub-block would
		// end the extension for this walk, while image/gif goes on reading sub-blocks after it.
		if first == 0 {
			return 0, false, badImage("gif: application extension without identifier at %d", i-2)
		}
		if first == 11 && i+12 <= len(in) {
			switch string(in[i+1 : i+12]) {
			case "NETSCAPE2.0", "ANIMEXTS1.0": // loop count (and buffering hint): how it animates
				keep = true
			}
		}
	}
	// Comments, other application extensions and unknown labels are skipped whole.
	end, err = gifSubBlocks(in, i)
	if err != nil {
		return 0, false, err
	}
	return end, keep, nil
}
