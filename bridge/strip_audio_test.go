package bridge_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// mp3Frames is n MPEG-1 layer III frames at 128 kbit/s, 44.1 kHz (417 bytes each, no padding),
// the first a Xing header as LAME writes one; the audio bytes are a pattern no tag signature
// appears in.
func mp3Frames(n int) []byte {
	const size = 417 // 144 × 128000 / 44100
	var b []byte
	for f := range n {
		frame := make([]byte, size)
		copy(frame, []byte{0xFF, 0xFB, 0x90, 0x64})
		for i := 4; i < size; i++ {
			frame[i] = byte(0x80 + (i*7+f)%64)
		}
		if f == 0 {
			copy(frame[36:], "Xing\x00\x00\x00\x0fLAME3.100")
		}
		b = append(b, frame...)
	}
	return b
}

// id3v2 is an ID3v2 tag of version major (3 or 4) holding frames (ID, then content), with a footer
// when footer is set (v2.4 only) and padding zeros.
func id3v2(major byte, footer bool, padding int, frames ...string) []byte {
	var body []byte
	for i := 0; i+1 < len(frames); i += 2 {
		id, content := frames[i], frames[i+1]
		size := len(content)
		var sz [4]byte
		if major == 4 {
			sz = [4]byte{byte(size >> 21 & 0x7f), byte(size >> 14 & 0x7f), byte(size >> 7 & 0x7f), byte(size & 0x7f)}
		} else {
			binary.BigEndian.PutUint32(sz[:], uint32(size))
		}
		body = append(body, id...)
		body = append(body, sz[:]...)
		body = append(body, 0, 0)
		body = append(body, content...)
	}
	body = append(body, make([]byte, padding)...)
	size := len(body)
	ss := []byte{byte(size >> 21 & 0x7f), byte(size >> 14 & 0x7f), byte(size >> 7 & 0x7f), byte(size & 0x7f)}
	var flags byte
	if footer {
		flags = 0x10
	}
	tag := append(append([]byte{'I', 'D', '3', major, 0, flags}, ss...), body...)
	if footer {
		tag = append(append(tag, '3', 'D', 'I', major, 0, flags), ss...)
	}
	return tag
}

// johnSmithID3 is an ID3v2.3 tag with a title, an artist and album art that all name John Smith.
func johnSmithID3() []byte {
	return id3v2(3, false, 64,
		"TIT2", "\x00Holiday in Lisbon",
		"TPE1", "\x00John Smith",
		"APIC", "\x00image/jpeg\x00\x03cover\x00\xff\xd8\xff\xe1Exif John Smith's phone\xff\xd9")
}

// id3v1 is an ID3v1.1 tag naming John Smith as the artist.
func id3v1() []byte {
	tag := make([]byte, 128)
	copy(tag, "TAG")
	copy(tag[3:], "Holiday")
	copy(tag[33:], "John Smith")
	copy(tag[93:], "2024")
	copy(tag[97:], "recorded at home")
	tag[127] = 12
	return tag
}

// id3v1Enhanced is the 227-byte TAG+ block that goes before an ID3v1 tag.
func id3v1Enhanced() []byte {
	tag := make([]byte, 227)
	copy(tag, "TAG+")
	copy(tag[4:], "Holiday in Lisbon, the long title")
	copy(tag[64:], "John Smith and friends")
	return tag
}

// apev2 is an APEv2 tag with a header and a footer, items naming John Smith.
func apev2() []byte {
	var items []byte
	for _, kv := range [][2]string{{"Artist", "John Smith"}, {"Comment", "Pixel 8"}} {
		items = binary.LittleEndian.AppendUint32(items, uint32(len(kv[1])))
		items = binary.LittleEndian.AppendUint32(items, 0)
		items = append(items, kv[0]+"\x00"+kv[1]...)
	}
	hdr := func(flags uint32) []byte {
		b := []byte("APETAGEX")
		b = binary.LittleEndian.AppendUint32(b, 2000)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(items)+32))
		b = binary.LittleEndian.AppendUint32(b, 2)
		b = binary.LittleEndian.AppendUint32(b, flags)
		return append(b, make([]byte, 8)...)
	}
	return append(append(hdr(1<<31|1<<29), items...), hdr(1<<31)...)
}

// lyrics3v2 is a Lyrics3 v2.00 block with an author field.
func lyrics3v2() []byte {
	body := "LYRICSBEGIN" + "IND00003110" + "AUT00010John Smith"
	return []byte(body + fmt.Sprintf("%06d", len(body)) + "LYRICS200")
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// flacBlock is a FLAC metadata block header and body.
func flacBlock(typ byte, last bool, body []byte) []byte {
	if last {
		typ |= 0x80
	}
	return append([]byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

func vorbisComment(vendor string, comments ...string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(vendor)))
	b = append(b, vendor...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(comments)))
	for _, c := range comments {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(c)))
		b = append(b, c...)
	}
	return b
}

func flacPicture(desc string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 3)
	b = binary.BigEndian.AppendUint32(b, 10)
	b = append(b, "image/jpeg"...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(desc)))
	b = append(b, desc...)
	b = append(b, make([]byte, 16)...) // width, height, depth, colours
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

var (
	flacStreamInfo = bytes.Repeat([]byte{0x12}, 34)
	flacSeekTable  = make([]byte, 18)
	flacFrames     = cat([]byte{0xFF, 0xF8, 0x69, 0x08, 0x00}, bytes.Repeat([]byte{0x5a, 0xa5}, 200))
)

// flacWithTags is a FLAC stream with a seek table, a Vorbis comment, an application block, a
// picture and padding (last), all but the seek table and padding naming John Smith.
func flacWithTags() []byte {
	return cat([]byte("fLaC"),
		flacBlock(0, false, flacStreamInfo),
		flacBlock(4, false, vorbisComment("reference libFLAC 1.4.3 John Smith's laptop", "ARTIST=John Smith", "LOCATION=Lisbon")),
		flacBlock(3, false, flacSeekTable),
		flacBlock(2, false, []byte("riffLIST....INFOIART John Smith")),
		flacBlock(6, false, flacPicture("John Smith on holiday", []byte("\xff\xd8 John Smith \xff\xd9"))),
		flacBlock(1, true, make([]byte, 64)),
		flacFrames)
}

// cleanFLAC is what flacWithTags must become.
func cleanFLAC() []byte {
	return cat([]byte("fLaC"),
		flacBlock(0, false, flacStreamInfo),
		flacBlock(3, false, flacSeekTable),
		flacBlock(1, true, make([]byte, 64)),
		flacFrames)
}

func TestStripAudio(t *testing.T) {
	frames := mp3Frames(6)
	tests := []struct {
		name      string
		in, want  []byte
		notTagged bool // nothing to strip: the output is the input
	}{
		{"mp3 with ID3v2.3 (title, artist, APIC)", cat(johnSmithID3(), frames), frames, false},
		{"mp3 with two ID3v2 tags, one v2.4 with a footer", cat(johnSmithID3(), id3v2(4, true, 0, "TPE1", "\x03John Smith"), frames), frames, false},
		{"mp3 with ID3v1", cat(frames, id3v1()), frames, false},
		{"mp3 with TAG+ and ID3v1", cat(frames, id3v1Enhanced(), id3v1()), frames, false},
		{"mp3 with APEv2", cat(frames, apev2()), frames, false},
		{"mp3 with every tag", cat(johnSmithID3(), frames, lyrics3v2(), apev2(), id3v1Enhanced(), id3v1()), frames, false},
		{"mp3 with an appended ID3v2.4", cat(frames, id3v2(4, true, 0, "TPE1", "\x03John Smith"), id3v1()), frames, false},
		{"mp3 without tags", frames, frames, true},
		{"one frame without tags", frames[:417], frames[:417], true},
		{"flac with comment, picture, application", flacWithTags(), cleanFLAC(), false},
		{"flac with ID3v2 in front and ID3v1 behind", cat(johnSmithID3(), flacWithTags(), id3v1()), cleanFLAC(), false},
		{"flac without tags", cleanFLAC(), cleanFLAC(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, ok, err := bridge.StripMetadata(tc.in)
			if err != nil || !ok {
				t.Fatalf("StripMetadata: ok=%v err=%v", ok, err)
			}
			if !bytes.Equal(out, tc.want) {
				t.Fatalf("got %d bytes, want %d: the audio is not kept byte for byte", len(out), len(tc.want))
			}
			if !tc.notTagged && !bytes.Contains(tc.in, []byte("John Smith")) {
				t.Fatal("the test's input does not name John Smith")
			}
			if bytes.Contains(out, []byte("John Smith")) {
				t.Error("John Smith survived")
			}
			inPlace, _, err := bridge.StripInPlace(bytes.Clone(tc.in))
			if err != nil || !bytes.Equal(inPlace, out) {
				t.Errorf("in place: %v, same bytes %v", err, bytes.Equal(inPlace, out))
			}
			if again, _, err := bridge.StripMetadata(out); err != nil || !bytes.Equal(again, out) {
				t.Errorf("stripping twice changes the file again (%v)", err)
			}
		})
	}
}

func TestStripAudioRefusesDamagedTags(t *testing.T) {
	frames := mp3Frames(3)
	tag := johnSmithID3()
	badSize := bytes.Clone(tag)
	badSize[7] = 0x80 // not syncsafe
	ape := apev2()
	apeLong := bytes.Clone(ape)
	binary.LittleEndian.PutUint32(apeLong[len(apeLong)-32+12:], 1<<30)
	apeNoHeader := bytes.Clone(ape)
	copy(apeNoHeader, "XXXXXXXX")
	lyr := lyrics3v2()
	lyrBad := bytes.Clone(lyr)
	lyrBad[len(lyrBad)-12] = 'x'
	flac := flacWithTags()
	tests := []struct {
		name string
		in   []byte
	}{
		{"ID3v2 longer than the file", cat(tag[:len(tag)-1])},
		{"ID3v2 size not syncsafe", cat(badSize, frames)},
		{"second ID3v2 cut short", cat(tag, tag[:20])},
		{"APE footer with a size past the file", cat(frames, apeLong)},
		{"APE footer whose header is missing", cat(frames, apeNoHeader)},
		{"Lyrics3 with a bad size", cat(frames, lyrBad, id3v1())},
		{"ID3v2.4 footer without its header", cat(frames, []byte("3DI\x04\x00\x10\x00\x00\x00\x05"))},
		{"flac cut in its metadata", flac[:60]},
		{"flac without STREAMINFO first", cat([]byte("fLaC"), flacBlock(4, true, vorbisComment("x")), flacFrames)},
		{"flac with a short STREAMINFO", cat([]byte("fLaC"), flacBlock(0, true, flacStreamInfo[:20]), flacFrames)},
		{"flac with two STREAMINFO", cat([]byte("fLaC"), flacBlock(0, false, flacStreamInfo), flacBlock(0, true, flacStreamInfo))},
		{"flac with an invalid block type", cat([]byte("fLaC"), flacBlock(0, false, flacStreamInfo), flacBlock(127, true, nil))},
		{"flac without a last block", cat([]byte("fLaC"), flacBlock(0, false, flacStreamInfo))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, ok, err := bridge.StripMetadata(tc.in)
			if !errors.Is(err, bridge.ErrBadAudio) || !ok || out != nil {
				t.Errorf("got ok=%v err=%v and %d bytes, want ErrBadAudio", ok, err, len(out))
			}
		})
	}
}

func TestStripAudioLeavesOtherDataAlone(t *testing.T) {
	frames := mp3Frames(2)
	for _, in := range [][]byte{
		[]byte("ID3 tags are what MP3 players show. John Smith"),            // "ID3" but no header
		cat(frames[:4], []byte(strings.Repeat("John Smith ", 60)), id3v1()), // one frame header, nothing where the next should be
		[]byte{0xFF, 0xF1, 0x50, 0x80},                                      // AAC ADTS: layer 0
		cat([]byte{0xFF, 0xFB, 0x00, 0x00}, frames),                         // free-format bitrate
		[]byte("fLa"),
	} {
		out, ok, err := bridge.StripMetadata(in)
		if ok || err != nil || !bytes.Equal(out, in) {
			t.Errorf("%q: got ok=%v err=%v", in[:min(len(in), 16)], ok, err)
		}
	}
}

// TestMPEGFrameHeaders: the frame lengths the recogniser computes for the usual kinds of MP3.
func TestMPEGFrameHeaders(t *testing.T) {
	for _, tc := range []struct {
		header []byte
		size   int
	}{
		{[]byte{0xFF, 0xFB, 0x90, 0x64}, 417}, // MPEG-1 layer III, 128 kbit/s, 44.1 kHz
		{[]byte{0xFF, 0xFB, 0x92, 0x64}, 418}, // the same, padded
		{[]byte{0xFF, 0xFB, 0xE4, 0x00}, 960}, // 320 kbit/s, 48 kHz
		{[]byte{0xFF, 0xF3, 0x84, 0x00}, 192}, // MPEG-2 layer III, 64 kbit/s, 24 kHz
		{[]byte{0xFF, 0xE3, 0x88, 0x00}, 576}, // MPEG-2.5 layer III, 64 kbit/s, 8 kHz
		{[]byte{0xFF, 0xFD, 0x94, 0x00}, 480}, // MPEG-1 layer II, 160 kbit/s, 48 kHz
		{[]byte{0xFF, 0xFF, 0x54, 0x00}, 160}, // MPEG-1 layer I, 160 kbit/s, 48 kHz
	} {
		in := cat(tc.header, make([]byte, tc.size-4), tc.header, make([]byte, tc.size-4), id3v1())
		want := in[:2*tc.size]
		out, ok, err := bridge.StripMetadata(in)
		if err != nil || !ok || !bytes.Equal(out, want) {
			t.Errorf("% x: ok=%v err=%v, %d bytes, want %d", tc.header, ok, err, len(out), len(want))
		}
	}
}

// fuzzAudio checks what the filter makes of an MP3 or FLAC it takes: no larger, the same in place,
// unchanged by a second pass; an MP3's output is one run of its input's bytes with no tag left at
// either end; a FLAC's keeps only STREAMINFO (first), PADDING, SEEKTABLE and CUESHEET blocks, the
// last one flagged, then one run of the input's bytes.
func fuzzAudio(t *testing.T, in []byte) {
	mp3 := bytes.HasPrefix(in, []byte("ID3")) || len(in) >= 2 && in[0] == 0xFF && in[1]&0xE0 == 0xE0
	if !mp3 && !bytes.HasPrefix(in, []byte("fLaC")) {
		return
	}
	out, ok, err := bridge.StripMetadata(in)
	inPlace, ok2, err2 := bridge.StripInPlace(bytes.Clone(in))
	if ok != ok2 || (err == nil) != (err2 == nil) || !bytes.Equal(out, inPlace) {
		t.Fatalf("in place: ok %v err %v, copy: ok %v err %v; same bytes: %v", ok2, err2, ok, err, bytes.Equal(out, inPlace))
	}
	if err != nil || !ok {
		return
	}
	if len(out) > len(in) {
		t.Fatalf("%d bytes out of %d", len(out), len(in))
	}
	if again, _, err := bridge.StripMetadata(out); err != nil || !bytes.Equal(again, out) {
		t.Fatalf("stripping twice changes the file again (%v)", err)
	}
	if !bytes.HasPrefix(out, []byte("fLaC")) {
		if !bytes.Contains(in, out) {
			t.Fatal("the MP3's audio is not one run of the input's bytes")
		}
		if len(out) >= 10 && string(out[:3]) == "ID3" && out[3] >= 2 && out[3] <= 4 && out[4] != 0xFF {
			t.Fatal("an ID3v2 tag survived")
		}
		if n := len(out); n >= 128 && string(out[n-128:n-125]) == "TAG" || n >= 32 && string(out[n-32:n-24]) == "APETAGEX" {
			t.Fatal("a trailing tag survived")
		}
		return
	}
	i := 4
	for first := true; ; first = false {
		h := out[i]
		n := int(out[i+1])<<16 | int(out[i+2])<<8 | int(out[i+3])
		switch typ := h & 0x7f; {
		case first != (typ == 0):
			t.Fatalf("block type %d at %d", typ, i)
		case typ == 2 || typ == 4 || typ == 6 || typ > 6:
			t.Fatalf("block type %d survived", typ)
		case typ == 1 && !bytes.Equal(out[i+4:i+4+n], make([]byte, n)):
			t.Fatal("padding that is not zeros survived")
		}
		i += 4 + n
		if h&0x80 != 0 {
			break
		}
	}
	if !bytes.Contains(in, out[i:]) {
		t.Fatal("the FLAC's frames are not one run of the input's bytes")
	}
}

// TestAudioTagsDoNotReachMembers: through the core, an MP3 audio file, an MP3 voice note and a
// FLAC sent as a file reach the other members without the tags naming John Smith; one whose tag
// is damaged reaches nobody, and its sender is told.
func TestAudioTagsDoNotReachMembers(t *testing.T) {
	h := startMedia(t, nil)
	alice, bob := h.tg.User("alice"), h.dc.User("bob")
	h.room(t, alice, h.tg, map[bridge.Addr]*bridgetest.Platform{bob: h.dc})
	nick := nickOf(t, h.harness, alice)

	frames := mp3Frames(20)
	for i, tc := range []struct {
		kind bridge.MediaKind
		name string
		in   []byte
		want []byte
	}{
		{bridge.MediaAudio, "John Smith - Holiday.mp3", cat(johnSmithID3(), frames, apev2(), id3v1()), frames},
		{bridge.MediaVoice, "", cat(johnSmithID3(), frames), frames},
		{bridge.MediaFile, "holiday.flac", flacWithTags(), cleanFLAC()},
	} {
		caption := fmt.Sprintf("listen %d", i)
		h.tg.SayMedia(t, alice, caption, bridgetest.File(tc.kind, tc.name, "", tc.in, nil))
		h.dc.WaitFor(t, bob.Chat, wait, "the "+string(tc.kind), hasRelay(nick, caption))
		got := h.dcm.Media(bob.Chat)
		if len(got) != i+1 {
			t.Fatalf("bob got %d files, want %d", len(got), i+1)
		}
		if r := got[i]; r.Sum != sha256.Sum256(tc.want) || r.Kind != tc.kind {
			t.Errorf("%s: bob got a %s of %d bytes, not the %d without tags", tc.kind, r.Kind, r.Len, len(tc.want))
		}
	}

	bad := cat(johnSmithID3(), frames, apev2())
	binary.LittleEndian.PutUint32(bad[len(bad)-32+12:], 1<<30) // the APE footer's size runs past the file
	h.tg.SayMedia(t, alice, "damaged", bridgetest.File(bridge.MediaAudio, "a.mp3", "audio/mpeg", bad, nil))
	h.tg.WaitText(t, alice.Chat, "audio file looks damaged, so I could not remove its metadata (tags such as an artist")
	h.tg.Say(t, alice, "after")
	h.dc.WaitFor(t, bob.Chat, wait, "the next text", hasRelay(nick, "after"))
	if n := len(h.dcm.Media(bob.Chat)); n != 3 {
		t.Errorf("bob got %d files, want 3: the damaged one reached him", n)
	}
}

func TestStripAudioInPlaceAllocatesNothing(t *testing.T) {
	for _, in := range [][]byte{cat(johnSmithID3(), mp3Frames(4), apev2(), id3v1()), cat(johnSmithID3(), flacWithTags(), id3v1())} {
		buf := make([]byte, len(in))
		if n := testing.AllocsPerRun(20, func() {
			copy(buf, in)
			if _, _, err := bridge.StripInPlace(buf); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("in place: %v allocations, want none", n)
		}
	}
}

// BenchmarkStripMetadataMP3 measures the filter on a ~4 MiB MP3 (10,000 frames) with an ID3v2
// tag holding 200 KB of album art, an APEv2 tag and an ID3v1 tag.
func BenchmarkStripMetadataMP3(b *testing.B) {
	art := "\x00image/jpeg\x00\x03\x00" + strings.Repeat("\xff\xd8 John Smith ", 200<<10/13)
	in := cat(id3v2(3, false, 1024, "TPE1", "\x00John Smith", "APIC", art), mp3Frames(10000), apev2(), id3v1())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bridge.StripMetadata(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStripMetadataFLAC measures the filter on a ~4 MiB FLAC whose metadata holds a Vorbis
// comment and a 200 KB picture.
func BenchmarkStripMetadataFLAC(b *testing.B) {
	in := cat([]byte("fLaC"),
		flacBlock(0, false, flacStreamInfo),
		flacBlock(4, false, vorbisComment("reference libFLAC 1.4.3", "ARTIST=John Smith")),
		flacBlock(6, false, flacPicture("cover", bytes.Repeat([]byte("John Smith "), 200<<10/11))),
		flacBlock(1, true, make([]byte, 8192)),
		bytes.Repeat(flacFrames, 4<<20/len(flacFrames)))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bridge.StripMetadata(in); err != nil {
			b.Fatal(err)
		}
	}
}
