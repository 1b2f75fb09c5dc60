package bridge_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"slices"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

// gifBlock is one block of a GIF after its screen: kind is "image", "trailer", "ext XX" by label,
// or "app " and the identifier of an Application Extension.
type gifBlock struct {
	kind       string
	start, end int
}

// gifBlocks lists data's blocks up to the trailer, walked apart from the filter: the tests use it
// to place metadata between blocks and to see what a stripped GIF still holds.
func gifBlocks(data []byte) ([]gifBlock, error) {
	if len(data) < 13 {
		return nil, errors.New("gif: no screen descriptor")
	}
	table := func(packed byte) int {
		if packed&0x80 == 0 {
			return 0
		}
		return 3 << (packed&7 + 1)
	}
	subBlocks := func(j int) (int, error) {
		for j < len(data) {
			n := int(data[j])
			j++
			if n == 0 {
				return j, nil
			}
			j += n
		}
		return 0, errors.New("gif: sub-blocks run past the end")
	}
	var blocks []gifBlock
	for i := 13 + table(data[10]); i < len(data); {
		b := gifBlock{start: i}
		var err error
		switch data[i] {
		case 0x3B:
			b.kind, b.end = "trailer", i+1
			return append(blocks, b), nil
		case 0x2C:
			if i+10 > len(data) {
				return nil, errors.New("gif: image descriptor runs past the end")
			}
			b.kind = "image"
			// The descriptor, its colour table, the LZW minimum code size, then the data.
			b.end, err = subBlocks(i + 10 + table(data[i+9]) + 1)
		case 0x21:
			if i+2 > len(data) {
				return nil, errors.New("gif: extension runs past the end")
			}
			b.kind = fmt.Sprintf("ext %02x", data[i+1])
			if data[i+1] == 0xFF && i+14 <= len(data) && data[i+2] == 11 {
				b.kind = "app " + string(data[i+3:i+14])
			}
			b.end, err = subBlocks(i + 2)
		default:
			return nil, fmt.Errorf("gif: block %#x at %d", data[i], i)
		}
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
		i = b.end
	}
	return nil, errors.New("gif: no trailer")
}

// gifRenderBlocks are the only blocks a stripped GIF may hold.
var gifRenderBlocks = []string{"image", "trailer", "ext f9", "ext 01", "app NETSCAPE2.0", "app ANIMEXTS1.0"}

// onlyRenderBlocks says what, if anything, a stripped GIF holds that it should not.
func onlyRenderBlocks(data []byte) error {
	blocks, err := gifBlocks(data)
	if err != nil {
		return err
	}
	if last := blocks[len(blocks)-1]; last.end != len(data) {
		return fmt.Errorf("%d bytes after the trailer", len(data)-last.end)
	}
	for _, b := range blocks {
		if !slices.Contains(gifRenderBlocks, b.kind) {
			return fmt.Errorf("a %q block at %d survived", b.kind, b.start)
		}
	}
	return nil
}

// gifExt is an extension block with label, its data cut into sub-blocks after a first sub-block
// of its own (the fixed header most extensions have; none when nil).
func gifExt(label byte, first, data []byte) []byte {
	b := []byte{0x21, label}
	if first != nil {
		b = append(append(b, byte(len(first))), first...)
	}
	for len(data) > 0 {
		n := min(len(data), 255)
		b = append(append(b, byte(n)), data[:n]...)
		data = data[n:]
	}
	return append(b, 0)
}

func gifComment(text string) []byte { return gifExt(0xFE, nil, []byte(text)) }

func gifApp(id string, data []byte) []byte { return gifExt(0xFF, []byte(id), data) }

// gifXMP is XMP's own way into a GIF: the packet as it is, not cut into sub-blocks, then the magic
// trailer that brings a reader hopping through the packet as sub-blocks to the terminator.
func gifXMP(packet string) []byte {
	b := append([]byte{0x21, 0xFF, 11}, "XMP DataXMP"...)
	b = append(b, packet...)
	b = append(b, 1)
	for v := 255; v >= 0; v-- {
		b = append(b, byte(v))
	}
	return append(b, 0) // the block terminator
}

const xmpPacket = `<?xpacket begin="` + "\uFEFF" + `" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">` +
	`<rdf:RDF><rdf:Description><dc:creator>John Smith</dc:creator><exif:GPSLatitude>51,30.43N</exif:GPSLatitude>` +
	`<tiff:Model>Pixel 7</tiff:Model></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`

// gifLeaks are byte strings that no stripped GIF of these tests may hold.
var gifLeaks = []string{"John Smith", "XMP DataXMP", "ICCRGBG1012", "MGK8BIM0000", "Pixel 7"}

// twoFrameGIF is what image/gif writes for a looping animation of two frames: a global colour
// table, a NETSCAPE2.0 loop count, then each frame's Graphic Control Extension and image, the
// second smaller, offset, with a local colour table and a transparent index.
func twoFrameGIF(t testing.TB) []byte {
	t.Helper()
	first := image.NewPaletted(image.Rect(0, 0, 16, 16), palette.Plan9)
	for x := range 16 {
		for y := range 16 {
			first.Set(x, y, color.RGBA{uint8(x * 16), uint8(y * 16), 100, 255})
		}
	}
	local := color.Palette{color.RGBA{0, 0, 0, 0}, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}, color.RGBA{0, 255, 0, 255}}
	second := image.NewPaletted(image.Rect(4, 4, 12, 12), local)
	for x := 4; x < 12; x++ {
		second.SetColorIndex(x, x, uint8(1+x%3))
	}
	var b bytes.Buffer
	g := &gif.GIF{
		Image:     []*image.Paletted{first, second},
		Delay:     []int{10, 25},
		Disposal:  []byte{gif.DisposalNone, gif.DisposalBackground},
		LoopCount: 3,
	}
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withBlocks is clean with extra bytes put before some of its blocks (by index, len(blocks) for
// after the trailer).
func withBlocks(t testing.TB, clean []byte, before map[int][]byte) []byte {
	t.Helper()
	blocks, err := gifBlocks(clean)
	if err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(clean[:blocks[0].start])
	for k, b := range blocks {
		out = append(out, before[k]...)
		out = append(out, clean[b.start:b.end]...)
	}
	return append(out, before[len(blocks)]...)
}

// gifWithMetadata is twoFrameGIF with what tools write into GIFs: comments (one between a frame's
// Graphic Control Extension and its image), an XMP packet, an ICC profile, ImageMagick's 8BIM
// block, and a trailer after the GIF's end. It returns the GIF and what image/gif wrote, which is
// what the filter must give back.
func gifWithMetadata(t testing.TB) (in, clean []byte) {
	t.Helper()
	clean = twoFrameGIF(t)
	icc := append([]byte("\x00\x00\x02\x0cappl\x02\x10\x00\x00mntrRGB XYZ "), "desc: John Smith's calibrated MacBook"...)
	in = withBlocks(t, clean, map[int][]byte{
		// 0: NETSCAPE2.0, 1: graphic control, 2: image, 3: graphic control, 4: image, 5: trailer
		0: slices.Concat(gifComment("made by John Smith on his Pixel 7"), gifXMP(xmpPacket), gifApp("ICCRGBG1012", icc)),
		2: gifComment("Exif-ish: 51.5074 N, 0.1278 W"),
		3: gifApp("MGK8BIM0000", []byte("8BIM\x04\x04John Smith")),
		5: gifComment(strings.Repeat("a long comment by John Smith ", 40)),
		6: []byte("secret trailer: John Smith"),
	})
	return in, clean
}

// gifHeader is a 1×1 GIF89a's signature and screen descriptor, with a global colour table of two
// colours.
const gifHeader = "GIF89a\x01\x00\x01\x00\x80\x00\x00" + "\x00\x00\x00\xff\xff\xff"

// gifPixel is a 1×1 image block of colour 0, and gifDelay a Graphic Control Extension of 0.1 s.
const (
	gifPixel = "\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00" + "\x02\x02\x44\x01\x00"
	gifDelay = "\x21\xf9\x04\x00\x0a\x00\x00\x00"
)

// sameAnimation says how two GIFs decode differently with image/gif, if they do.
func sameAnimation(a, b []byte) error {
	ga, err := gif.DecodeAll(bytes.NewReader(a))
	if err != nil {
		return fmt.Errorf("the first does not decode: %w", err)
	}
	gb, err := gif.DecodeAll(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("the second does not decode: %w", err)
	}
	switch {
	case len(ga.Image) != len(gb.Image):
		return fmt.Errorf("%d frames, then %d", len(ga.Image), len(gb.Image))
	case ga.LoopCount != gb.LoopCount:
		return fmt.Errorf("loop count %d, then %d", ga.LoopCount, gb.LoopCount)
	case !slices.Equal(ga.Delay, gb.Delay):
		return fmt.Errorf("delays %v, then %v", ga.Delay, gb.Delay)
	case !slices.Equal(ga.Disposal, gb.Disposal):
		return fmt.Errorf("disposal %v, then %v", ga.Disposal, gb.Disposal)
	case ga.BackgroundIndex != gb.BackgroundIndex:
		return errors.New("background index differs")
	case ga.Config.Width != gb.Config.Width || ga.Config.Height != gb.Config.Height:
		return errors.New("screen size differs")
	}
	for i := range ga.Image {
		fa, fb := ga.Image[i], gb.Image[i]
		if fa.Rect != fb.Rect || !slices.Equal(fa.Pix, fb.Pix) || !slices.Equal(fa.Palette, fb.Palette) {
			return fmt.Errorf("frame %d differs", i)
		}
	}
	return nil
}

func TestStripGIF(t *testing.T) {
	in, clean := gifWithMetadata(t)
	single := twoFrameGIF(t)
	// image/gif writes GIF89a only; a GIF87a is the same blocks under the older signature.
	var one bytes.Buffer
	if err := gif.Encode(&one, image.NewPaletted(image.Rect(0, 0, 3, 2), palette.WebSafe), nil); err != nil {
		t.Fatal(err)
	}
	gif87 := slices.Clone(one.Bytes())
	copy(gif87, "GIF87a")
	// Blocks that draw and animate, written by other encoders: kept as they are.
	rendered := withBlocks(t, single, map[int][]byte{
		0: gifApp("ANIMEXTS1.0", []byte{1, 0, 0}),
		5: gifExt(0x01, []byte("\x00\x00\x00\x00\x10\x00\x08\x00\x08\x08\x01\x00"), []byte("Hello")),
	})
	tests := []struct {
		name      string
		in, want  []byte
		unchanged bool // in comes out byte for byte
		// undecodable: image/gif refuses in (browsers do not), so out is compared with want only.
		undecodable bool
	}{
		{"comments, XMP, ICC and 8BIM around two looping frames", in, clean, false, false},
		{"an extension of unknown label", withBlocks(t, single, map[int][]byte{3: gifExt(0x99, nil, []byte("John Smith"))}), single, false, true},
		{"no metadata", single, single, true, false},
		{"plain text and the ANIMEXTS1.0 loop are kept", rendered, rendered, true, false},
		{"GIF87a with a comment", withBlocks(t, gif87, map[int][]byte{0: gifComment("John Smith")}), gif87, false, false},
		{"plain GIF87a", gif87, gif87, true, false},
		{"data after the trailer", append(slices.Clone(single), "John Smith"...), single, false, false},
		{"a hand-made GIF with a comment between each block", []byte(gifHeader + "\x21\xfe\x01A\x00" + gifDelay + "\x21\xfe\x01B\x00" + gifPixel + "\x21\xfe\x01C\x00;"),
			[]byte(gifHeader + gifDelay + gifPixel + ";"), false, false},
		{"a comment of empty sub-blocks only", []byte(gifHeader + "\x21\xfe\x00" + gifPixel + ";"), []byte(gifHeader + gifPixel + ";"), false, false},
		{"an application extension of Adobe's 10-byte identifier", []byte(gifHeader + "\x21\xff\x0aXMP DataXM\x03abc\x00" + gifPixel + ";"), []byte(gifHeader + gifPixel + ";"), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.unchanged != bytes.Equal(tc.in, tc.want) {
				t.Fatal("the test's want contradicts its unchanged")
			}
			out, ok, err := bridge.StripMetadata(tc.in)
			if err != nil || !ok {
				t.Fatalf("StripMetadata: ok=%v err=%v", ok, err)
			}
			if !bytes.Equal(out, tc.want) {
				t.Fatalf("got %d bytes %q, want %d %q", len(out), out, len(tc.want), tc.want)
			}
			inPlace, ok, err := bridge.StripInPlace(slices.Clone(tc.in))
			if err != nil || !ok || !bytes.Equal(inPlace, out) {
				t.Errorf("in place: ok=%v err=%v, the same bytes: %v", ok, err, bytes.Equal(inPlace, out))
			}
			for _, l := range gifLeaks {
				if bytes.Contains(out, []byte(l)) {
					t.Errorf("%q survived", l)
				}
			}
			if err := onlyRenderBlocks(out); err != nil {
				t.Error(err)
			}
			ref := tc.in
			if tc.undecodable {
				ref = tc.want
			}
			if err := sameAnimation(ref, out); err != nil {
				t.Errorf("decoded with image/gif: %v", err)
			}
			again, _, err := bridge.StripMetadata(out)
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("stripping twice changes the GIF again (%v)", err)
			}
		})
	}
	t.Run("the metadata is there to strip", func(t *testing.T) {
		for _, l := range gifLeaks {
			if !bytes.Contains(in, []byte(l)) {
				t.Errorf("the test's GIF lacks %q", l)
			}
		}
		blocks, err := gifBlocks(in)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, b := range blocks {
			kinds = append(kinds, b.kind)
		}
		for _, k := range []string{"ext fe", "app XMP DataXMP", "app ICCRGBG1012", "app MGK8BIM0000"} {
			if !slices.Contains(kinds, k) {
				t.Errorf("the test's GIF has no %q block: %v", k, kinds)
			}
		}
		// image/gif reads past all of it: the animation is the same before stripping.
		if err := sameAnimation(in, clean); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStripGIFXMPTrailer: an XMP packet is not cut into sub-blocks, but read as sub-blocks, from
// wherever its bytes lead, it always ends at the magic trailer's terminator: the block is dropped
// whole and the frames after it are kept, whatever the packet's length and bytes.
func TestStripGIFXMPTrailer(t *testing.T) {
	clean := twoFrameGIF(t)
	for _, alphabet := range []string{xmpPacket, "é€" + strings.Repeat("\u07ff", 7)} {
		for n := range 700 {
			packet := strings.Repeat(alphabet, n/len(alphabet)+1)[:n]
			in := withBlocks(t, clean, map[int][]byte{1: gifXMP(packet)})
			out, _, err := bridge.StripMetadata(in)
			if err != nil || !bytes.Equal(out, clean) {
				t.Fatalf("a %d-byte packet: err %v, the frames kept as they were: %v", n, err, bytes.Equal(out, clean))
			}
		}
	}
}

// TestStripGIFRefusesDamaged: a GIF whose blocks cannot be followed to the trailer is refused, as
// a damaged JPEG or PNG is: what the walk could not reach might be metadata. Data that only looks
// like a GIF to a reader of its first bytes is not one, and passes as any file does.
func TestStripGIFRefusesDamaged(t *testing.T) {
	in, _ := gifWithMetadata(t)
	blocks, err := gifBlocks(in)
	if err != nil {
		t.Fatal(err)
	}
	whole := in[:blocks[len(blocks)-1].end] // without what follows the trailer
	screen := gifHeader[:13]
	tests := []struct{ name, in string }{
		{"cut in the screen descriptor", gifHeader[:9]},
		{"cut in the global colour table", gifHeader[:15]},
		{"nothing after the screen", gifHeader},
		{"cut in an image descriptor", gifHeader + gifPixel[:6]},
		{"cut in a local colour table", gifHeader + "\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x80" + "\x00\x00"},
		{"no LZW code size", gifHeader + gifPixel[:10]},
		{"cut in image data", gifHeader + gifPixel[:12]},
		{"image data without terminator", gifHeader + gifPixel[:14] + ";"},
		{"an image sub-block longer than the file", gifHeader + gifPixel[:10] + "\x02\xc8\x44\x01;"},
		{"cut after the extension introducer", gifHeader + "\x21"},
		{"cut after the label", gifHeader + "\x21\xfe"},
		{"a comment without terminator", gifHeader + "\x21\xfe\x05hello"},
		{"a comment sub-block longer than the file", gifHeader + "\x21\xfe\x50John Smith" + gifPixel + ";"},
		{"a graphic control extension of 5 bytes", gifHeader + "\x21\xf9\x05\x00\x0a\x00\x00\x00\x00" + gifPixel + ";"},
		{"a graphic control extension with more sub-blocks", gifHeader + "\x21\xf9\x04\x00\x0a\x00\x00\x03abc\x00" + gifPixel + ";"},
		{"a graphic control extension cut short", gifHeader + gifDelay[:6]},
		{"a plain text extension without its 12-byte header", gifHeader + "\x21\x01\x05Hello\x00" + gifPixel + ";"},
		// By the grammar the extension ends at its empty sub-block and an image follows; image/gif
		// reads on, taking that image for the extension's data.
		{"an application extension without identifier", gifHeader + "\x21\xff\x00" + gifPixel + ";"},
		{"an application identifier longer than the file", gifHeader + "\x21\xff\x0bNETSCAPE"},
		{"a zero where a block starts", gifHeader + gifPixel + "\x00;"},
		{"an unknown block", gifHeader + gifPixel + "\x99;"},
		{"no trailer", gifHeader + gifPixel},
		{"no image, no trailer: a screen then text", screen + "John Smith"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, ok, err := bridge.StripMetadata([]byte(tc.in))
			if !errors.Is(err, bridge.ErrBadImage) || !ok || out != nil {
				t.Errorf("got %d bytes, ok=%v err=%v; want ErrBadImage", len(out), ok, err)
			}
			if _, _, err := bridge.StripInPlace([]byte(tc.in)); !errors.Is(err, bridge.ErrBadImage) {
				t.Errorf("in place: err = %v, want ErrBadImage", err)
			}
		})
	}
	t.Run("every cut of a GIF with metadata", func(t *testing.T) {
		for n := 6; n < len(whole); n++ {
			if _, ok, err := bridge.StripMetadata(whole[:n]); !errors.Is(err, bridge.ErrBadImage) || !ok {
				t.Fatalf("cut at %d of %d: ok=%v err=%v, want ErrBadImage", n, len(whole), ok, err)
			}
		}
	})
	for _, in := range []string{"GIF89", "GIF88a" + gifHeader[6:] + gifPixel + ";", "GIF"} {
		if out, ok, err := bridge.StripMetadata([]byte(in)); ok || err != nil || string(out) != in {
			t.Errorf("%q: ok=%v err=%v, want it passed on as it is", in, ok, err)
		}
	}
}

// TestStripGIFAllocations: one buffer of the input's size, none in place, whatever it holds.
func TestStripGIFAllocations(t *testing.T) {
	in, _ := gifWithMetadata(t)
	var out []byte
	if n := testing.AllocsPerRun(20, func() { out, _, _ = bridge.StripMetadata(in) }); n != 1 {
		t.Errorf("%v allocations, want 1", n)
	}
	if cap(out) > len(in) {
		t.Errorf("a buffer of %d bytes for %d", cap(out), len(in))
	}
	buf := make([]byte, len(in))
	if n := testing.AllocsPerRun(20, func() {
		copy(buf, in)
		_, _, _ = bridge.StripInPlace(buf)
	}); n != 0 {
		t.Errorf("in place: %v allocations, want none", n)
	}
}

// BenchmarkStripMetadataGIF measures the filter on a ~4 MiB animation of noise (LZW barely
// shrinks it, so it is all 255-byte sub-blocks to walk) with a comment and an XMP packet.
func BenchmarkStripMetadataGIF(b *testing.B) {
	g := &gif.GIF{LoopCount: 0}
	seed := uint32(1)
	for range 12 {
		p := image.NewPaletted(image.Rect(0, 0, 512, 512), palette.Plan9)
		for i := range p.Pix {
			seed = seed*1664525 + 1013904223
			p.Pix[i] = byte(seed >> 24)
		}
		g.Image = append(g.Image, p)
		g.Delay = append(g.Delay, 4)
	}
	var enc bytes.Buffer
	if err := gif.EncodeAll(&enc, g); err != nil {
		b.Fatal(err)
	}
	in := withBlocks(b, enc.Bytes(), map[int][]byte{0: slices.Concat(gifComment("John Smith"), gifXMP(xmpPacket))})
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bridge.StripMetadata(in); err != nil {
			b.Fatal(err)
		}
	}
}
