package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// StripMetadata removes from a JPEG, PNG, WebP or GIF image everything that is not needed to show
// it and could tell who made it: EXIF (GPS position, camera serial, time), XMP, IPTC, comments,
// embedded thumbnails and previews (which carry EXIF of their own), and whatever trails the image.
// It works on the container's segments, never re-encoding pixels, so the picture is byte for byte
// the one sent. ICC colour profiles are kept (except in a GIF: see stripGIF): they describe a colour
// space shared by every device of a model, and without them wide-gamut photos show wrong colours.
//
// The format is read from the bytes, not from a declared MIME type (which the sender controls).
// Other data is returned unchanged with ok false. A damaged image of a known format is an error:
// relaying it as it is could leak what the filter could not find. MP3 and FLAC audio lose their
// tags the same way (strip_audio.go).
func StripMetadata(data []byte) (out []byte, ok bool, err error) {
	return stripMetadata(make([]byte, 0, len(data)), data)
}

// stripInPlace is StripMetadata writing over data itself, so that a file never needs twice its
// size in memory: every filter writes only where it has already read (what it keeps moves towards
// the start, never past its source).
func stripInPlace(data []byte) (out []byte, ok bool, err error) {
	return stripMetadata(data[:0], data)
}

// stripMetadata writes the kept bytes of data to out (empty, with room for data; it may be data's
// own storage).
func stripMetadata(out, data []byte) ([]byte, bool, error) {
	var err error
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		out, err = stripJPEG(out, data)
	case bytes.HasPrefix(data, pngSignature):
		out, err = stripPNG(out, data)
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		out, err = stripWebP(out, data)
	case isGIF(data):
		out, err = stripGIF(out, data) // strip_gif.go
	case isMP4(data):
		out, err = stripMP4(out, data) // strip_mp4.go: MP4, MOV, 3GP, M4V, M4A
	case isMP3(data):
		out, err = stripMP3(out, data) // strip_audio.go
	case bytes.HasPrefix(data, []byte("fLaC")):
		out, err = stripFLAC(out, data) // strip_audio.go
	default:
		return data, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	return out, true, nil
}

// ErrBadImage is a JPEG, PNG, WebP or GIF whose structure the metadata filter cannot follow.
var ErrBadImage = errors.New("damaged image")

func badImage(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadImage, fmt.Sprintf(format, a...))
}

// stripJPEG keeps SOI, the segments decoding needs (frame, scan, tables, restart interval, the
// JFIF APP0, Adobe APP14 for the colour transform, ICC profile APP2) and the entropy-coded data,
// and stops at EOI. Dropped: APP1 (EXIF, XMP), APP13 (IPTC/Photoshop), other APPn (MPF previews,
// FlashPix, vendor blocks), COM comments, JFXX thumbnails, and anything after EOI (appended
// previews and vendor trailers).
func stripJPEG(out, in []byte) ([]byte, error) {
	out = append(out, 0xFF, 0xD8)
	i := 2
	for {
		// A marker: one or more 0xFF fill bytes, then its code.
		if i >= len(in) || in[i] != 0xFF {
			return nil, badImage("jpeg: no marker at %d", i)
		}
		for i < len(in) && in[i] == 0xFF {
			i++
		}
		if i >= len(in) {
			return nil, badImage("jpeg: truncated marker")
		}
		code := in[i]
		i++
		switch {
		case code == 0xD9: // EOI: whatever follows is not part of the image
			return append(out, 0xFF, 0xD9), nil
		case code == 0xD8 || code == 0x00:
			return nil, badImage("jpeg: unexpected marker %#x", code)
		case code >= 0xD0 && code <= 0xD7 || code == 0x01:
			out = append(out, 0xFF, code) // no length
			continue
		}
		if i+2 > len(in) {
			return nil, badImage("jpeg: truncated segment")
		}
		n := int(binary.BigEndian.Uint16(in[i:]))
		if n < 2 || i+n > len(in) {
			return nil, badImage("jpeg: segment length %d", n)
		}
		seg := in[i : i+n] // length bytes and payload
		i += n
		// keep is decided before anything is written: in place, the marker may overwrite fill bytes.
		if keepJPEGSegment(code, seg[2:]) {
			out = append(out, 0xFF, code)
			out = append(out, seg...)
		}
		if code != 0xDA {
			continue
		}
		// After a scan header comes entropy-coded data up to the next marker that is neither a
		// stuffed 0xFF00 nor a restart marker.
		start := i
		for i < len(in) {
			if in[i] != 0xFF {
				next := bytes.IndexByte(in[i:], 0xFF)
				if next < 0 {
					i = len(in)
					break
				}
				i += next
			}
			if i+1 >= len(in) {
				i++
				continue
			}
			c := in[i+1]
			if c == 0x00 || c >= 0xD0 && c <= 0xD7 || c == 0xFF {
				i += 2
				if c == 0xFF {
					i-- // a fill byte: look at the next one again
				}
				continue
			}
			break
		}
		if i >= len(in) {
			return nil, badImage("jpeg: no end of image")
		}
		out = append(out, in[start:i]...)
	}
}

func keepJPEGSegment(code byte, payload []byte) bool {
	switch {
	case code == 0xE0: // APP0: the JFIF header, not a JFXX thumbnail
		return bytes.HasPrefix(payload, []byte("JFIF\x00"))
	case code == 0xE2: // APP2: the ICC profile, not MPF previews or FlashPix
		return bytes.HasPrefix(payload, []byte("ICC_PROFILE\x00"))
	case code == 0xEE: // APP14: Adobe's colour transform flag, which decoders read
		return bytes.HasPrefix(payload, []byte("Adobe"))
	case code >= 0xE0 && code <= 0xEF, code == 0xFE: // other APPn, COM
		return false
	}
	return true
}

var pngSignature = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}

// pngKeep is every chunk a PNG or APNG keeps: the critical ones and the ancillary ones about how to
// show the pixels. Text (tEXt, zTXt, iTXt: where XMP and "Author" live), eXIf, tIME and any chunk
// not listed (vendor and private chunks, C2PA manifests) are dropped.
var pngKeep = map[string]bool{
	"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true,
	"tRNS": true, "cHRM": true, "gAMA": true, "iCCP": true, "sBIT": true, "sRGB": true, "cICP": true,
	"mDCV": true, "cLLI": true, "bKGD": true, "hIST": true, "pHYs": true, "sPLT": true,
	"acTL": true, "fcTL": true, "fdAT": true,
}

func stripPNG(out, in []byte) ([]byte, error) {
	out = append(out, pngSignature...)
	i := len(pngSignature)
	for {
		if i+12 > len(in) {
			return nil, badImage("png: truncated chunk")
		}
		n := binary.BigEndian.Uint32(in[i:])
		if n > uint32(len(in)-i-12) {
			return nil, badImage("png: chunk length %d", n)
		}
		end := i + 12 + int(n)
		typ := string(in[i+4 : i+8])
		if pngKeep[typ] {
			out = append(out, in[i:end]...)
		}
		i = end
		if typ == "IEND" {
			return out, nil // anything after IEND is not part of the image
		}
	}
}

// webpKeep is every RIFF chunk a WebP needs; EXIF, "XMP " and unknown chunks are dropped.
var webpKeep = map[string]bool{
	"VP8 ": true, "VP8L": true, "VP8X": true, "ALPH": true, "ANIM": true, "ANMF": true, "ICCP": true,
}

// VP8X flags that announce chunks the filter drops.
const (
	vp8xEXIF = 0x08
	vp8xXMP  = 0x04
)

func stripWebP(out, in []byte) ([]byte, error) {
	size := binary.LittleEndian.Uint32(in[4:])
	if size < 4 || uint64(size) > uint64(len(in)-8) {
		return nil, badImage("webp: riff size %d", size)
	}
	body := in[12 : 8+size] // whatever follows the RIFF is dropped
	out = append(out, in[:12]...)
	for i := 0; i < len(body); {
		if i+8 > len(body) {
			return nil, badImage("webp: truncated chunk")
		}
		n := binary.LittleEndian.Uint32(body[i+4:])
		padded := uint64(n) + uint64(n&1)
		if padded > uint64(len(body)-i-8) {
			if uint64(n) != uint64(len(body)-i-8) {
				return nil, badImage("webp: chunk length %d", n)
			}
			padded = uint64(n) // a last odd chunk some encoders leave unpadded
		}
		end := i + 8 + int(padded)
		typ := string(body[i : i+4])
		if webpKeep[typ] {
			start := len(out)
			out = append(out, body[i:end]...)
			if typ == "VP8X" && n >= 1 {
				out[start+8] &^= vp8xEXIF | vp8xXMP
			}
		}
		i = end
	}
	if len(out) == 12 {
		return nil, badImage("webp: no image chunk")
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, nil
}
