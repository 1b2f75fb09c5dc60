package bridge

import (
	"bytes"
	"encoding/binary"
)

// ISO base media files (MP4, MOV, 3GP, M4V, M4A) are a tree of boxes, each a 32-bit big-endian
// size (header included), a four-character type, then its payload. A size of 1 means a 64-bit
// "largesize" follows the type; a size of 0 means the box runs to the end of the file. A "uuid"
// box has a 16-byte extended type after that.

// xmpUUID is the extended type of the uuid box that holds an XMP packet (Adobe's XMP
// specification, part 3).
var xmpUUID = []byte{0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC}

// isMP4 reports whether data starts like an ISO base media file the filter handles.
//
// A file that starts with an "ftyp" box is one, whatever follows (a damaged one is refused by the
// walk), unless its brands say it is a HEIF/AVIF image (see heifBrand). A QuickTime file from
// before ftyp (older cameras, some editors) starts with moov, mdat, wide, free or skip instead;
// since any data may hold those four letters at offset 4 (a text starting "the free..."), such a
// file is taken only when its first box's size fits the data, and passed on as it is otherwise.
func isMP4(data []byte) bool {
	if len(data) < 8 {
		return false
	}
	switch string(data[4:8]) {
	case "ftyp":
		return !heifBrand(data)
	case "moov", "mdat", "wide", "free", "skip":
		size := uint64(binary.BigEndian.Uint32(data))
		if size == 1 && len(data) >= 16 {
			size = binary.BigEndian.Uint64(data[8:])
			return size >= 16 && size <= uint64(len(data))
		}
		return size >= 8 && size <= uint64(len(data))
	}
	return false
}

// heifBrand reports whether the ftyp box at the start of data names a HEIF or AVIF brand (HEIC
// photos, AVIF images, their sequences). Those files are ISO base media too, but their top-level
// meta box is the image itself (its items, their locations and properties), not metadata: zeroing
// it would destroy the picture, so they are passed on as they are, as before this filter knew any
// box (their EXIF item is not removed).
func heifBrand(data []byte) bool {
	end := len(data)
	if n := binary.BigEndian.Uint32(data); n >= 8 && uint64(n) < uint64(end) {
		end = int(n)
	}
	// The major brand at 8, the minor version at 12, then the compatible brands.
	for i := 8; i+4 <= end; i += 4 {
		if i == 12 {
			continue
		}
		switch string(data[i : i+4]) {
		case "mif1", "mif2", "msf1", "miaf", "heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs", "avif", "avis", "avio":
			return true
		}
	}
	return false
}

// stripMP4 blanks an MP4's or QuickTime file's metadata where it lies, leaving every byte around
// it as it was.
//
// Boxes are not removed and no size changes: the sample tables' chunk offsets (stco, co64) are
// absolute positions in the file, and moov, where the metadata lives, often precedes mdat, where
// the samples are (a "fast start" file, what phones and web encoders write), so shrinking moov
// would make every offset point at the wrong bytes. Each metadata box is instead turned into free
// space in place: its type becomes "free" and everything after its size fields (a uuid box's
// extended type included) is zeroed. Its size, and so every offset in the file, stays, and a
// player skips a free box wherever it lies, so the video plays exactly as before.
//
// Zeroed wherever the walk goes: udta (QuickTime user data: ©xyz location, ©mak/©mod make and
// model, ©swr software, ©day date, 3GPP loci location, and everything else a device or tool
// writes there, iTunes-style tags of an M4A included), meta (Apple's mdta keys:
// com.apple.quicktime.location.ISO6709, .make, .model, .software, .creationdate; ISO meta boxes
// with XML or Exif items), meco (more meta boxes) and the XMP uuid box. The payload of free and
// skip boxes is zeroed too (their type is kept): it is meaningless to a player by definition, and
// a tool that "removes" metadata in place, as this filter does, may have left it there unzeroed.
//
// The walk goes into the containers that may hold those boxes, and no further: the file's top
// level, moov and moof, their trak and traf, trak's mdia and mdia's minf. What it does not enter
// (stbl and the sample descriptions, edts, mdat) is kept byte for byte. The creation and
// modification times in mvhd, tkhd and mdhd are kept too: they say when, not where or with what,
// the video was made, a player shows them as the video's date, and the message itself is dated.
// Not touched either: a timed metadata track's samples (GoPro's GPMF telemetry, Apple's mebx),
// which live in mdat like the video's own.
//
// A box whose size runs past its parent (or the file), or is smaller than its header, is an
// error, as a damaged JPEG is: what the walk could not follow may hold metadata. The one short
// run accepted is a 32-bit zero at the end of a container, QuickTime's terminator.
//
// out may be in's own storage (stripInPlace): the whole file is copied to out, unless it is in,
// then blanked there. On an error out holds a partly blanked copy and is not returned.
func stripMP4(out, in []byte) ([]byte, error) {
	out = out[:len(in)] // out has room for in: see stripMetadata
	if len(in) > 0 && &out[0] != &in[0] {
		copy(out, in)
	}
	if err := blankMP4Boxes(out, 0, len(out), boxFile); err != nil {
		return nil, err
	}
	return out, nil
}

// boxType is a box's four-character type as a big-endian number: comparing these, unlike strings
// made from the file's bytes, allocates nothing.
type boxType uint32

// The box types the walk compares, as constants: a four-character code read as a big-endian uint32.
const (
	boxFile boxType = 0          // the file's top level, as a parent
	boxMoov boxType = 0x6d6f6f76 // "moov"
	boxMoof boxType = 0x6d6f6f66 // "moof"
	boxTrak boxType = 0x7472616b // "trak"
	boxTraf boxType = 0x74726166 // "traf"
	boxMdia boxType = 0x6d646961 // "mdia"
	boxMinf boxType = 0x6d696e66 // "minf"
	boxUdta boxType = 0x75647461 // "udta"
	boxMeta boxType = 0x6d657461 // "meta"
	boxMeco boxType = 0x6d65636f // "meco"
	boxUUID boxType = 0x75756964 // "uuid"
	boxFree boxType = 0x66726565 // "free"
	boxSkip boxType = 0x736b6970 // "skip"
)

// mp4Child reports whether the walk goes into a box of type typ inside parent. Only this fixed
// path is followed, so the recursion is at most four deep whatever the file holds.
func mp4Child(parent, typ boxType) bool {
	switch parent {
	case boxFile:
		return typ == boxMoov || typ == boxMoof
	case boxMoov:
		return typ == boxTrak
	case boxMoof:
		return typ == boxTraf
	case boxTrak:
		return typ == boxMdia
	case boxMdia:
		return typ == boxMinf
	}
	return false
}

// blankMP4Boxes walks the boxes of b[start:end], the payload of a box of type parent, blanking
// metadata boxes and going into the containers mp4Child names.
func blankMP4Boxes(b []byte, start, end int, parent boxType) error {
	for i := start; i < end; {
		left := end - i
		if left < 8 {
			if parent != boxFile && left == 4 && binary.BigEndian.Uint32(b[i:]) == 0 {
				return nil // QuickTime's terminator
			}
			return badImage("mp4: truncated box at %d", i)
		}
		size := uint64(binary.BigEndian.Uint32(b[i:]))
		name := b[i+4 : i+8] // for errors
		typ := boxType(binary.BigEndian.Uint32(name))
		fields := 8 // the size fields and the type
		switch size {
		case 1:
			if left < 16 {
				return badImage("mp4: truncated %q box at %d", name, i)
			}
			size, fields = binary.BigEndian.Uint64(b[i+8:]), 16
		case 0:
			// To the end of the file: only the last top-level box may say so. Inside a container
			// it is read as to the end of the container, as ffmpeg and Apple's players do.
			size = uint64(left)
		}
		header := fields
		if typ == boxUUID {
			header += 16
		}
		if size < uint64(header) {
			return badImage("mp4: %q box at %d: size %d is smaller than its header", name, i, size)
		}
		if size > uint64(left) {
			return badImage("mp4: %q box at %d: size %d runs past its container", name, i, size)
		}
		next := i + int(size)
		switch {
		case typ == boxUdta || typ == boxMeta || typ == boxMeco ||
			typ == boxUUID && bytes.Equal(b[i+fields:i+header], xmpUUID):
			copy(b[i+4:], "free")
			clear(b[i+fields : next])
		case typ == boxFree || typ == boxSkip:
			clear(b[i+fields : next])
		case mp4Child(parent, typ):
			if err := blankMP4Boxes(b, i+header, next, typ); err != nil {
				return err
			}
		}
		i = next
	}
	return nil
}
