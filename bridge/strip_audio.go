package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadAudio is an MP3 or FLAC file whose tags or metadata blocks the filter cannot follow.
var ErrBadAudio = errors.New("damaged audio file")

func badAudio(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadAudio, fmt.Sprintf(format, a...))
}

// Audio tags can name whoever made or sent a file: an artist, a title, a comment, the encoder and
// the device it ran on, album art (a photo, with EXIF of its own). The filters here cut the tags
// and keep the audio byte for byte: no frame is decoded or re-encoded.
//
// A tag whose declared size runs past the data, or a FLAC block that does, is an error, as a PNG
// chunk that runs past its file is (strip.go): the filter cannot tell where the tag ends, so
// relaying the file would mean guessing, and a wrong guess leaks the rest of the tag. This applies
// only to signatures that cannot be audio by chance ("ID3" with a well-formed header, "APETAGEX",
// "3DI", "LYRICS200"); the weak ones ("TAG" 128 bytes before the end) have no size to get wrong.
//
// Not handled: Ogg (Vorbis, Opus) comment headers, which are relayed as they are (rewriting them
// means re-paginating and re-checksumming the stream); Lyrics3 v1 (no size: it would need a search
// for its start); ID3v2 tags in the middle of an MP3 (a stream's later tags, which players skip
// as junk between frames); RIFF/WAV INFO chunks, AIFF and MP4 audio (see strip_mp4.go for MP4).

// isMP3 reports whether data is MPEG audio as the filter takes it: a well-formed ID3v2 header at
// the start (whatever follows it: an MP3, or a FLAC some taggers prefix with ID3), or an MPEG
// audio frame header at offset 0 followed by another frame header where the first frame ends (or
// by the end, or by a tag): four bytes alone match too much else by chance.
func isMP3(data []byte) bool {
	if id3v2Header(data) {
		return true
	}
	n := mpegFrameLen(data)
	if n == 0 {
		return false
	}
	if n >= len(data) {
		return n == len(data)
	}
	rest := data[n:]
	if mpegFrameLen(rest) > 0 {
		return true
	}
	for _, sig := range []string{"TAG", "APETAGEX", "ID3", "LYRICSBEGIN"} {
		if bytes.HasPrefix(rest, []byte(sig)) {
			return true
		}
	}
	return false
}

// id3v2Header reports whether data starts with what an ID3v2.2-2.4 header looks like: "ID3", a
// major version 2 to 4, a revision below 0xFF. Its size is checked by id3v2Len.
func id3v2Header(data []byte) bool {
	return len(data) >= 10 && string(data[:3]) == "ID3" && data[3] >= 2 && data[3] <= 4 && data[4] != 0xFF
}

// id3v2Len is the whole length of the ID3v2 tag at the start of data (header, body and, for a
// v2.4 tag with flag 0x10, footer).
func id3v2Len(data []byte) (int, error) {
	size, ok := syncsafe(data[6:10])
	if !ok {
		return 0, badAudio("id3v2: size %x is not syncsafe", data[6:10])
	}
	n := 10 + size
	if data[3] == 4 && data[5]&0x10 != 0 {
		n += 10
	}
	if n > len(data) {
		return 0, badAudio("id3v2: tag of %d bytes in %d", n, len(data))
	}
	return n, nil
}

// syncsafe reads a 28-bit integer stored in four bytes of seven bits each.
func syncsafe(b []byte) (int, bool) {
	if (b[0]|b[1]|b[2]|b[3])&0x80 != 0 {
		return 0, false
	}
	return int(b[0])<<21 | int(b[1])<<14 | int(b[2])<<7 | int(b[3]), true
}

// MPEG audio bitrates in kbit/s by bitrate index, for MPEG-1 layers I, II, III and MPEG-2/2.5
// layer I and layers II/III. Index 0 (free format) and 15 are not accepted.
var mpegBitrates = [5][15]int{
	{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
	{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
	{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
	{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
	{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
}

// mpegFrameLen is the length of the MPEG audio frame whose header starts data, or 0 when data does
// not start with a valid one: an 11-bit sync, a known version and layer, a bitrate index from 1 to
// 14, a known sample rate, a known emphasis.
func mpegFrameLen(data []byte) int {
	if len(data) < 4 || data[0] != 0xFF || data[1]&0xE0 != 0xE0 {
		return 0
	}
	version := data[1] >> 3 & 3 // 0: MPEG-2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
	layer := data[1] >> 1 & 3   // 1: III, 2: II, 3: I, 0: reserved
	bi := int(data[2] >> 4)
	si := data[2] >> 2 & 3
	padding := int(data[2] >> 1 & 1)
	if version == 1 || layer == 0 || bi == 0 || bi == 15 || si == 3 || data[3]&3 == 2 {
		return 0
	}
	rate := [3]int{44100, 48000, 32000}[si]
	switch version {
	case 2:
		rate /= 2
	case 0:
		rate /= 4
	}
	var table int
	switch {
	case version == 3:
		table = int(3 - layer) // I: 0, II: 1, III: 2
	case layer == 3:
		table = 3
	default:
		table = 4
	}
	bitrate := mpegBitrates[table][bi] * 1000
	switch {
	case layer == 3: // layer I: 4-byte slots
		return (12*bitrate/rate + padding) * 4
	case layer == 1 && version != 3: // MPEG-2/2.5 layer III: 576 samples a frame
		return 72*bitrate/rate + padding
	}
	return 144*bitrate/rate + padding
}

// stripMP3 drops the ID3v2 tags at the start of in (one or more, each with its footer) and the
// tags at its end (trailingTags), and keeps what lies between byte for byte: MPEG frames carry no
// offsets into the file (each starts with its sync, and a Xing/LAME/VBRI header in the first frame
// counts bytes of audio, not of file), so nothing points at what moved. When the ID3v2 tags lead
// to a FLAC stream, the FLAC filter goes on from there.
//
// Everything is read before it is written over, and each kept byte moves towards the start, so out
// may be in's own storage (stripInPlace).
func stripMP3(out, in []byte) ([]byte, error) {
	i := 0
	for id3v2Header(in[i:]) {
		n, err := id3v2Len(in[i:])
		if err != nil {
			return nil, err
		}
		i += n
	}
	if bytes.HasPrefix(in[i:], []byte("fLaC")) {
		return stripFLAC(out, in[i:])
	}
	end, err := trailingTags(in, i)
	if err != nil {
		return nil, err
	}
	return append(out, in[i:end]...), nil
}

// trailingTags is where the audio of in ends once every tag at its end, none before start, is
// cut: ID3v1 (its last 128 bytes, "TAG") and the Enhanced TAG+ (227 bytes) before it, APEv1/v2
// ("APETAGEX" footer, and header when it has one), Lyrics3 v2 ("LYRICS200"), and an appended
// ID3v2.4 tag ("3DI" footer). They are cut in whatever order they come, until none is left.
func trailingTags(in []byte, start int) (int, error) {
	end := len(in)
	for {
		tail := in[start:end]
		switch {
		case len(tail) >= 128 && string(tail[len(tail)-128:][:3]) == "TAG":
			end -= 128
			if end-start >= 227 && string(in[end-227:end-223]) == "TAG+" {
				end -= 227
			}
		case len(tail) >= 32 && string(tail[len(tail)-32:][:8]) == "APETAGEX":
			f := tail[len(tail)-32:]
			size := binary.LittleEndian.Uint32(f[12:]) // items and footer
			flags := binary.LittleEndian.Uint32(f[20:])
			n := uint64(size)
			if flags&(1<<31) != 0 { // the tag has a header too
				n += 32
			}
			if size < 32 || n > uint64(len(tail)) {
				return 0, badAudio("ape: tag of %d bytes in %d", n, len(tail))
			}
			if flags&(1<<31) != 0 && string(tail[len(tail)-int(n):][:8]) != "APETAGEX" {
				return 0, badAudio("ape: no header where the footer puts it")
			}
			end -= int(n)
		case len(tail) >= 15 && string(tail[len(tail)-9:]) == "LYRICS200":
			var size int
			for _, c := range tail[len(tail)-15 : len(tail)-9] {
				if c < '0' || c > '9' {
					return 0, badAudio("lyrics3: size %q", tail[len(tail)-15:len(tail)-9])
				}
				size = size*10 + int(c-'0')
			}
			n := size + 15
			if n > len(tail) || !bytes.HasPrefix(tail[len(tail)-n:], []byte("LYRICSBEGIN")) {
				return 0, badAudio("lyrics3: tag of %d bytes in %d", n, len(tail))
			}
			end -= n
		case len(tail) >= 10 && string(tail[len(tail)-10:][:3]) == "3DI":
			f := tail[len(tail)-10:]
			size, ok := syncsafe(f[6:10])
			n := size + 20
			if !ok || n > len(tail) || string(tail[len(tail)-n:][:3]) != "ID3" || !bytes.Equal(tail[len(tail)-n:][3:6], f[3:6]) {
				return 0, badAudio("id3v2: footer without its tag")
			}
			end -= n
		default:
			return end, nil
		}
	}
}

// FLAC metadata block types (https://xiph.org/flac/format.html#metadata_block_header).
const (
	flacStreamInfo    = 0
	flacPadding       = 1
	flacApplication   = 2
	flacSeekTable     = 3
	flacVorbisComment = 4
	flacCueSheet      = 5
	flacPicture       = 6
	flacInvalid       = 127
	flacLast          = 0x80
)

// stripFLAC keeps a FLAC stream's STREAMINFO (first, as it must be), SEEKTABLE, CUESHEET and
// zero-filled PADDING blocks, sets the last-block flag on the last one kept, and keeps the frames
// byte for byte, minus tags some taggers append after them (trailingTags). Dropped: VORBIS_COMMENT
// (artist, title, encoder, and whatever else a tagger writes), PICTURE (album art, a photo with
// EXIF of its own), APPLICATION blocks (vendor data: foobar2000, and RIFF chunks kept from a WAV,
// its INFO tags among them), PADDING that is not all zeros, and reserved types.
//
// Nothing kept holds a file offset that the cut blocks could shift: SEEKTABLE offsets count from
// the first frame header, CUESHEET ones in samples, and frames carry frame or sample numbers.
func stripFLAC(out, in []byte) ([]byte, error) {
	out = append(out, "fLaC"...)
	i, last := 4, -1
	for {
		if len(in)-i < 4 {
			return nil, badAudio("flac: truncated metadata")
		}
		h := in[i]
		typ := h &^ flacLast
		n := int(in[i+1])<<16 | int(in[i+2])<<8 | int(in[i+3])
		if n > len(in)-i-4 {
			return nil, badAudio("flac: block of %d bytes at %d", n, i)
		}
		if (last < 0) != (typ == flacStreamInfo) || typ == flacStreamInfo && n != 34 || typ == flacInvalid {
			return nil, badAudio("flac: block type %d at %d", typ, i)
		}
		block := in[i : i+4+n]
		i += 4 + n
		var keep bool
		switch typ {
		case flacStreamInfo, flacSeekTable, flacCueSheet:
			keep = true
		case flacPadding:
			keep = allZero(block[4:])
		}
		if keep {
			last = len(out)
			out = append(out, block...)
			out[last] &^= flacLast
		}
		if h&flacLast != 0 {
			break
		}
	}
	out[last] |= flacLast
	end, err := trailingTags(in, i)
	if err != nil {
		return nil, err
	}
	return append(out, in[i:end]...), nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
