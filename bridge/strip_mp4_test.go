package bridge_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

// mp4Box is a box of type typ holding payload, with a 32-bit size.
func mp4Box(typ string, payload ...[]byte) []byte {
	body := slices.Concat(payload...)
	return slices.Concat(binary.BigEndian.AppendUint32(nil, uint32(8+len(body))), []byte(typ), body)
}

// mp4LargeBox is the same box with a 64-bit size (size 1, then largesize).
func mp4LargeBox(typ string, payload ...[]byte) []byte {
	body := slices.Concat(payload...)
	return slices.Concat([]byte{0, 0, 0, 1}, []byte(typ), binary.BigEndian.AppendUint64(nil, uint64(16+len(body))), body)
}

// mp4Full is a full box: version 0 and flags, then payload.
func mp4Full(typ string, flags uint32, payload ...[]byte) []byte {
	return mp4Box(typ, append(binary.BigEndian.AppendUint32(nil, flags), slices.Concat(payload...)...))
}

func be32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

func zeros(n int) []byte { return make([]byte, n) }

var (
	xmpUUID = []byte{0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC}
	// identity matrix of mvhd and tkhd
	mp4Matrix = be32(0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
	// stcoMarker stands for the chunk offset until the file's layout is known.
	stcoMarker = []byte{0xDE, 0xAD, 0xBE, 0xEF}
)

const mp4Location = "+48.8584+002.2945/"

// mp4Leaks are byte strings that no stripped video of these tests may hold.
var mp4Leaks = []string{"+48.8584+002.2945", "Apple", "iPhone 15 Pro", "17.4.1", "com.apple.quicktime", "John Smith", "Pixel 7", "2024-05-01T10:00:00+0200"}

func mp4XMP() []byte { return mp4Box("uuid", xmpUUID, []byte(xmpPacket)) }

// qtText is a QuickTime user data text item (©xyz, ©mak...): a 16-bit length and language, then
// the text.
func qtText(typ, text string) []byte {
	return mp4Box(typ, binary.BigEndian.AppendUint16(nil, uint16(len(text))), []byte{0x15, 0xC7}, []byte(text))
}

// appleMeta is the meta box an iPhone writes into moov: an mdta handler, the keys, and their values.
func appleMeta() []byte {
	keys := []string{"com.apple.quicktime.location.ISO6709", "com.apple.quicktime.make", "com.apple.quicktime.model", "com.apple.quicktime.software", "com.apple.quicktime.creationdate"}
	values := []string{"+48.8584+002.2945+035.000/", "Apple", "iPhone 15 Pro", "17.4.1", "2024-05-01T10:00:00+0200"}
	var keyBoxes, items []byte
	for i, k := range keys {
		keyBoxes = append(keyBoxes, mp4Box("mdta", []byte(k))...)
		data := mp4Box("data", be32(1, 0), []byte(values[i])) // type 1: UTF-8, locale 0
		items = append(items, mp4Box(string(be32(uint32(i+1))), data)...)
	}
	return mp4Box("meta",
		mp4Full("hdlr", 0, be32(0), []byte("mdta"), zeros(12), []byte{0}),
		mp4Full("keys", 0, be32(uint32(len(keys))), keyBoxes),
		mp4Box("ilst", items))
}

// mp4Parts are the boxes of a small video, metadata in every place phones and tools put it.
type mp4Parts struct {
	ftyp, moovMeta, trakMeta, top []byte // top: boxes between moov and mdat
	large                         bool   // moov, udta and mdat with 64-bit sizes
	mdatZero                      bool   // mdat with size 0, running to the end of the file
}

// mp4File builds the video: ftyp, moov (mvhd, a video trak, then moovMeta), top, mdat; trakMeta
// goes into the trak after its mdia. The trak's one chunk offset points at mdat's first byte.
func mp4File(p mp4Parts) []byte {
	box := mp4Box
	if p.large {
		box = mp4LargeBox
	}
	mvhd := mp4Full("mvhd", 0, be32(3796000000, 3796000001, 1000, 1000, 0x10000), []byte{1, 0}, zeros(10), mp4Matrix, zeros(24), be32(2))
	tkhd := mp4Full("tkhd", 3, be32(3796000000, 3796000001, 1, 0, 1000, 0, 0), []byte{0, 0, 0, 0, 0, 0, 0, 0}, mp4Matrix, be32(16<<16, 16<<16))
	mdhd := mp4Full("mdhd", 0, be32(3796000000, 3796000001, 90000, 90000), []byte{0x55, 0xC4, 0, 0})
	hdlr := mp4Full("hdlr", 0, be32(0), []byte("vide"), zeros(12), []byte("VideoHandler\x00"))
	stbl := mp4Box("stbl",
		mp4Full("stsd", 0, be32(1), mp4Box("avc1", zeros(78), mp4Box("avcC", []byte{1, 0x42, 0xC0, 0x1E, 0xFF, 0xE0}))),
		mp4Full("stts", 0, be32(1, 1, 90000)),
		mp4Full("stsc", 0, be32(1, 1, 1, 1)),
		mp4Full("stsz", 0, be32(0, 1, 64)),
		mp4Full("stco", 0, be32(1), stcoMarker))
	minf := mp4Box("minf", mp4Full("vmhd", 1, zeros(8)), mp4Box("dinf", mp4Full("dref", 0, be32(1), mp4Full("url ", 1))), stbl)
	trak := mp4Box("trak", tkhd, mp4Box("mdia", mdhd, hdlr, minf), p.trakMeta)
	moov := box("moov", mvhd, trak, p.moovMeta)
	frames := bytes.Repeat([]byte("\x00\x00\x00\x3c\x65 frame data "), 4) // 64 bytes
	var mdat []byte
	switch {
	case p.mdatZero:
		mdat = slices.Concat([]byte{0, 0, 0, 0}, []byte("mdat"), frames)
	default:
		mdat = box("mdat", frames)
	}
	file := slices.Concat(p.ftyp, moov, p.top, mdat)
	offset := uint32(len(file) - len(frames))
	return bytes.Replace(file, stcoMarker, be32(offset), 1)
}

func mp4Ftyp(major string, compatible ...string) []byte {
	return mp4Box("ftyp", []byte(major), be32(0x200), []byte(strings.Join(compatible, "")))
}

// iphoneParts is what an iPhone and a few tools put into a video: moov/udta with ©xyz, ©mak,
// ©mod and ©swr, moov/meta with Apple's mdta keys, XMP in moov, in the trak and at the top
// level, trak/udta and trak/meta, and a free box with old metadata left in it.
func iphoneParts() mp4Parts {
	return mp4Parts{
		ftyp: mp4Ftyp("qt  ", "qt  "),
		moovMeta: slices.Concat(
			mp4Box("udta", qtText("\xa9xyz", mp4Location), qtText("\xa9mak", "Apple"), qtText("\xa9mod", "iPhone 15 Pro"), qtText("\xa9swr", "17.4.1")),
			appleMeta(), mp4XMP()),
		trakMeta: slices.Concat(mp4Box("udta", qtText("\xa9nam", "John Smith's holiday")), mp4Box("meta", mp4Full("hdlr", 0, be32(0), []byte("mdta"), zeros(13))), mp4XMP()),
		top:      slices.Concat(mp4XMP(), mp4Box("free", []byte("old: John Smith, Pixel 7")), mp4Box("wide")),
	}
}

// mp4TestBox is one box the tests' own walk found: its path from the top ("moov/trak/udta"), where
// it starts and ends, and how long its size fields and type are (8, or 16 with a largesize).
type mp4TestBox struct {
	path               string
	start, end, fields int
}

func (b mp4TestBox) typ() string { return b.path[strings.LastIndexByte(b.path, '/')+1:] }

// mp4Containers are the paths the filter must walk into.
var mp4Containers = []string{"moov", "moof", "moov/trak", "moof/traf", "moov/trak/mdia", "moov/trak/mdia/minf"}

// mp4Walk lists the boxes of data that the filter must see, walked apart from it (with a queue, not
// recursion), or says why data is not a well-formed file.
func mp4Walk(data []byte) ([]mp4TestBox, error) {
	type span struct {
		path       string
		start, end int
	}
	var boxes []mp4TestBox
	queue := []span{{"", 0, len(data)}}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		for i := c.start; i < c.end; {
			rest := data[i:c.end]
			if len(rest) < 8 {
				if c.path != "" && bytes.Equal(rest, []byte{0, 0, 0, 0}) {
					break
				}
				return nil, fmt.Errorf("%s: %d bytes left at %d", c.path, len(rest), i)
			}
			size, fields := uint64(binary.BigEndian.Uint32(rest)), 8
			if size == 1 {
				if len(rest) < 16 {
					return nil, fmt.Errorf("no room for a largesize at %d", i)
				}
				size, fields = binary.BigEndian.Uint64(rest[8:]), 16
			} else if size == 0 {
				size = uint64(len(rest))
			}
			typ := string(rest[4:8])
			header := uint64(fields)
			if typ == "uuid" {
				header += 16
			}
			if size < header || size > uint64(len(rest)) {
				return nil, fmt.Errorf("%q at %d: size %d (header %d, room %d)", typ, i, size, header, len(rest))
			}
			b := mp4TestBox{path: strings.TrimPrefix(c.path+"/"+typ, "/"), start: i, end: i + int(size), fields: fields}
			boxes = append(boxes, b)
			if slices.Contains(mp4Containers, b.path) {
				queue = append(queue, span{b.path, i + int(header), b.end})
			}
			i = b.end
		}
	}
	return boxes, nil
}

// isMP4Metadata says whether the filter must blank box b of data.
func isMP4Metadata(data []byte, b mp4TestBox) bool {
	switch b.typ() {
	case "udta", "meta", "meco", "free", "skip":
		return true
	case "uuid":
		return bytes.Equal(data[b.start+b.fields:b.start+b.fields+16], xmpUUID)
	}
	return false
}

// mp4Want is what the filter must make of in: the same bytes but for every metadata box, which
// becomes free (free and skip keep their type) with a zero payload after its size fields. It also
// returns the boxes so blanked.
func mp4Want(in []byte) ([]byte, []mp4TestBox, error) {
	boxes, err := mp4Walk(in)
	if err != nil {
		return nil, nil, err
	}
	want := slices.Clone(in)
	var blanked []mp4TestBox
	for _, b := range boxes {
		if !isMP4Metadata(in, b) {
			continue
		}
		if b.typ() != "free" && b.typ() != "skip" {
			copy(want[b.start+4:], "free")
		}
		clear(want[b.start+b.fields : b.end])
		blanked = append(blanked, b)
	}
	return want, blanked, nil
}

// checkMP4 checks what the filter made of a video it took: exactly mp4Want's bytes, the same again
// when stripped twice or in place, and no metadata box left where the walk goes.
func checkMP4(in, out []byte) error {
	want, _, err := mp4Want(in)
	if err != nil {
		return fmt.Errorf("the filter took a file the tests' walk refuses: %v", err)
	}
	if len(out) != len(in) {
		return fmt.Errorf("%d bytes became %d", len(in), len(out))
	}
	if i := firstDiff(out, want); i >= 0 {
		return fmt.Errorf("byte %d is %#x, want %#x", i, out[i], want[i])
	}
	again, ok, err := bridge.StripMetadata(out)
	if !ok || err != nil || !bytes.Equal(again, out) {
		return fmt.Errorf("stripping twice changes the video again (ok %v, %v)", ok, err)
	}
	inPlace, ok, err := bridge.StripInPlace(slices.Clone(in))
	if !ok || err != nil || !bytes.Equal(inPlace, out) {
		return fmt.Errorf("stripping in place gives other bytes (ok %v, %v)", ok, err)
	}
	boxes, err := mp4Walk(out)
	if err != nil {
		return fmt.Errorf("the stripped video is not well formed: %v", err)
	}
	for _, b := range boxes {
		if t := b.typ(); t == "udta" || t == "meta" || t == "meco" || isMP4Metadata(out, b) && t == "uuid" {
			return fmt.Errorf("%s at %d survived", b.path, b.start)
		}
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func TestStripMP4(t *testing.T) {
	iphone := iphoneParts()
	large := iphoneParts()
	large.large = true
	large.moovMeta = slices.Concat(mp4LargeBox("udta", qtText("\xa9xyz", mp4Location)), appleMeta())
	zeroMdat := iphoneParts()
	zeroMdat.mdatZero = true
	isoMeta := mp4Parts{
		ftyp:     mp4Ftyp("isom", "isom", "iso2", "avc1", "mp41"),
		moovMeta: mp4Box("meco", mp4Box("meta", mp4Full("hdlr", 0, be32(0), []byte("mp7t"), zeros(13)), mp4Full("xml ", 0, []byte("<loc>"+mp4Location+"</loc>")))),
		// An ISO meta box at the top level, with an XMP item, and a 3GPP location in moov/udta.
		top: mp4Full("meta", 0, mp4Full("hdlr", 0, be32(0), []byte("meta"), zeros(13)), mp4Full("xml ", 0, []byte(xmpPacket))),
	}
	isoMeta.trakMeta = mp4Box("udta", mp4Full("loci", 0, []byte{0x15, 0xC7}, []byte("Tour Eiffel\x00"), []byte{0}, be32(0x00024BC6, 0x0030D40E, 0x23), []byte("Earth\x00Pixel 7 notes\x00")))
	// A QuickTime file of before ftyp: wide, mdat, then moov at the end.
	qt := slices.Concat(mp4Box("wide"), mp4Box("mdat", []byte("frames")), mp4Box("moov", mp4Box("udta", qtText("\xa9xyz", mp4Location)), mp4Box("uuid", xmpUUID, []byte("John Smith"))))
	tests := []struct {
		name string
		in   []byte
		// blanked are the paths of the boxes that must become free, in the walk's order.
		blanked []string
	}{
		{"iphone video", mp4File(iphone), []string{"uuid", "free", "moov/udta", "moov/meta", "moov/uuid", "moov/trak/udta", "moov/trak/meta", "moov/trak/uuid"}},
		{"64-bit sizes", mp4File(large), []string{"uuid", "free", "moov/udta", "moov/meta", "moov/trak/udta", "moov/trak/meta", "moov/trak/uuid"}},
		{"mdat of size 0 last", mp4File(zeroMdat), []string{"uuid", "free", "moov/udta", "moov/meta", "moov/uuid", "moov/trak/udta", "moov/trak/meta", "moov/trak/uuid"}},
		{"iso meta, meco and 3gpp loci", mp4File(isoMeta), []string{"meta", "moov/meco", "moov/trak/udta"}},
		{"quicktime without ftyp", qt, []string{"moov/udta", "moov/uuid"}},
		{"no metadata", mp4File(mp4Parts{ftyp: mp4Ftyp("mp42", "mp42", "isom")}), nil},
		{"moov cut to a 32-bit zero terminator", slices.Concat(mp4Ftyp("qt  "), mp4Box("moov", mp4Box("udta", qtText("\xa9xyz", mp4Location)), zeros(4))), []string{"moov/udta"}},
		{"a box of size 0 inside moov runs to moov's end", slices.Concat(mp4Ftyp("qt  "), mp4Box("moov", []byte{0, 0, 0, 0}, []byte("udta"), qtText("\xa9xyz", mp4Location)), mp4Box("mdat")), []string{"moov/udta"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, ok, err := bridge.StripMetadata(tc.in)
			if err != nil || !ok {
				t.Fatalf("StripMetadata: ok=%v err=%v", ok, err)
			}
			if err := checkMP4(tc.in, out); err != nil {
				t.Fatal(err)
			}
			_, blanked, err := mp4Want(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, b := range blanked {
				paths = append(paths, b.path)
				// Blanked: free (or skip) of the same size, every byte after the size fields zero...
				if typ := string(out[b.start+4 : b.start+8]); typ != "free" && typ != "skip" {
					t.Errorf("%s became %q", b.path, typ)
				}
				if !bytes.Equal(out[b.start:b.start+4], tc.in[b.start:b.start+4]) || !bytes.Equal(out[b.start+8:b.start+b.fields], tc.in[b.start+8:b.start+b.fields]) {
					t.Errorf("%s's size changed", b.path)
				}
				if slices.ContainsFunc(out[b.start+b.fields:b.end], func(c byte) bool { return c != 0 }) {
					t.Errorf("%s's payload is not zero", b.path)
				}
			}
			// ...and every other byte as it was.
			for i := range tc.in {
				inBlanked := slices.ContainsFunc(blanked, func(b mp4TestBox) bool { return i >= b.start+4 && i < b.end })
				if !inBlanked && out[i] != tc.in[i] {
					t.Fatalf("byte %d outside the metadata changed", i)
				}
			}
			if !slices.Equal(paths, tc.blanked) {
				t.Errorf("blanked %q, want %q", paths, tc.blanked)
			}
			for _, l := range mp4Leaks {
				if bytes.Contains(out, []byte(l)) {
					t.Errorf("%q survived", l)
				}
			}
			if tc.blanked == nil && !bytes.Equal(out, tc.in) {
				t.Error("a video without metadata changed")
			}
			if got, want := http.DetectContentType(out), http.DetectContentType(tc.in); got != want {
				t.Errorf("sniffed as %s, was %s", got, want)
			}
		})
	}
	if !bytes.Contains(mp4File(iphone), []byte(mp4Location)) || !bytes.Contains(mp4File(iphone), xmpUUID) {
		t.Fatal("the test video lacks its location or XMP")
	}
	if got := http.DetectContentType(mp4File(isoMeta)); got != "video/mp4" {
		t.Fatalf("the test video is sniffed as %s", got)
	}
}

func TestStripMP4Refuses(t *testing.T) {
	good := mp4File(iphoneParts())
	ftyp := mp4Ftyp("isom", "isom")
	moovAt := len(mp4Ftyp("qt  ", "qt  "))
	setSize := func(at int, size uint32) []byte {
		b := slices.Clone(good)
		binary.BigEndian.PutUint32(b[at:], size)
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"cut in the middle of mdat", good[:len(good)-10]},
		{"cut in the middle of moov", good[:moovAt+100]},
		{"cut inside a box header", good[:moovAt+5]},
		{"box size smaller than its header", setSize(moovAt, 4)},
		{"box size past the end", setSize(moovAt, uint32(len(good)))},
		{"udta past the end of moov", slices.Concat(ftyp, mp4Box("moov", []byte{0, 0, 0, 0x40}, []byte("udta"), qtText("\xa9xyz", mp4Location)), mp4Box("mdat", zeros(64)))},
		{"trak's mdia past the end of trak", slices.Concat(ftyp, mp4Box("moov", mp4Box("trak", []byte{0, 0, 0, 0x20}, []byte("mdia"), zeros(8))), mp4Box("mdat", zeros(64)))},
		{"largesize smaller than its header", slices.Concat(ftyp, []byte{0, 0, 0, 1}, []byte("moov"), be32(0, 15), zeros(8))},
		{"largesize past the end", slices.Concat(ftyp, []byte{0, 0, 0, 1}, []byte("mdat"), be32(1, 0), zeros(8))},
		{"largesize cut", slices.Concat(ftyp, []byte{0, 0, 0, 1}, []byte("mdat"), be32(0))},
		{"uuid box without room for its extended type", slices.Concat(ftyp, mp4Box("uuid", xmpUUID[:8]))},
		{"bytes after the last box", slices.Concat(ftyp, mp4Box("mdat", zeros(8)), []byte{1, 2, 3})},
		{"four zero bytes at the top level", slices.Concat(ftyp, mp4Box("mdat", zeros(8)), zeros(4))},
		{"ftyp past the end", setSize(0, uint32(len(good)+1))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mp4Walk(tc.in); err == nil {
				t.Fatal("the tests' own walk takes it")
			}
			out, ok, err := bridge.StripMetadata(tc.in)
			if !errors.Is(err, bridge.ErrBadImage) || !ok || out != nil {
				t.Errorf("got %d bytes, ok=%v, err=%v; want ErrBadImage", len(out), ok, err)
			}
			if out, _, err := bridge.StripInPlace(slices.Clone(tc.in)); !errors.Is(err, bridge.ErrBadImage) || out != nil {
				t.Errorf("in place: got %d bytes, err=%v; want ErrBadImage", len(out), err)
			}
		})
	}
}

func TestStripMP4PassesOthersOn(t *testing.T) {
	heic := slices.Concat(mp4Ftyp("heic", "mif1", "heic"), mp4Full("meta", 0, mp4Full("hdlr", 0, be32(0), []byte("pict"), zeros(13)), mp4Full("pitm", 0, []byte{0, 1})), mp4Box("mdat", zeros(16)))
	avifSeq := slices.Concat(mp4Ftyp("avis", "avis", "msf1", "miaf"), mp4Box("moov", mp4Box("udta", qtText("\xa9xyz", mp4Location))))
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		// A HEIF's top-level meta is the image: left alone, as before.
		{"heic photo", heic},
		{"avif sequence", avifSeq},
		// "free" at offset 4 but no box there: passed on, not refused as a damaged video.
		{"text", []byte("the free software foundation")},
		{"a wide box longer than the data", slices.Concat(be32(100), []byte("wide"), zeros(10))},
		{"too short", []byte("\x00\x00\x00\x08ftyp"[:7])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok, err := bridge.StripMetadata(tc.in)
			if ok || err != nil || !bytes.Equal(out, tc.in) {
				t.Errorf("got ok=%v err=%v, changed %v", ok, err, !bytes.Equal(out, tc.in))
			}
		})
	}
}

// fuzzMP4 checks a file that starts like an MP4: when the filter takes it, exactly the metadata
// the tests' own walk finds is blanked, nothing else changes, and stripping twice or in place gives
// the same bytes; when it refuses it, so does the tests' walk.
func fuzzMP4(t *testing.T, in []byte) {
	out, ok, err := bridge.StripMetadata(in)
	if !ok {
		return
	}
	if err != nil {
		if _, werr := mp4Walk(in); werr == nil {
			t.Fatalf("refused (%v), but the tests' walk takes it", err)
		}
		if _, _, err2 := bridge.StripInPlace(slices.Clone(in)); err2 == nil {
			t.Fatal("refused, but taken in place")
		}
		return
	}
	if err := checkMP4(in, out); err != nil {
		t.Fatal(err)
	}
}

// looksMP4 is what fuzzMP4 looks at: a box type at offset 4 that the filter may take.
func looksMP4(in []byte) bool {
	return len(in) >= 8 && slices.Contains([]string{"ftyp", "moov", "mdat", "wide", "free", "skip"}, string(in[4:8]))
}

// BenchmarkStripMetadataMP4 measures the filter on a 4 MiB phone video (mdat after moov, which
// holds an iPhone's metadata), copying (StripMetadata) and in place (what the relay does).
func BenchmarkStripMetadataMP4(b *testing.B) {
	p := iphoneParts()
	p.top = slices.Concat(p.top, mp4Box("mdat", bytes.Repeat([]byte("video frame data"), 4<<20/16)))
	in := mp4File(p)
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := bridge.StripMetadata(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in place", func(b *testing.B) {
		data := slices.Clone(in)
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := bridge.StripInPlace(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
