package bridge_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"slices"
	"strings"
	"testing"

	exif "github.com/dsoprea/go-exif/v3"
	_ "golang.org/x/image/webp" // image.Decode for WebP

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// hasEXIF reports whether go-exif finds an EXIF block anywhere in data.
func hasEXIF(data []byte) bool {
	_, err := exif.SearchAndExtractExif(data)
	return !errors.Is(err, exif.ErrNoExif)
}

func testImage() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		for y := range 16 {
			img.Set(x, y, color.RGBA{uint8(x * 16), uint8(y * 16), 100, 255})
		}
	}
	return img
}

func TestStripMetadata(t *testing.T) {
	var jpg, pngb bytes.Buffer
	if err := jpeg.Encode(&jpg, testImage(), nil); err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(&pngb, testImage()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		// leaks are byte strings that must not survive (names, positions, XMP, comments).
		leaks []string
	}{
		{"jpeg with EXIF GPS, XMP, IPTC and a comment", bridgetest.JPEGWithMetadata(t), []string{"Exif\x00\x00", "http://ns.adobe.com/xap/1.0/", "Photoshop 3.0", "John Smith", "secret trailer"}},
		{"plain jpeg", jpg.Bytes(), nil},
		{"png with eXIf and text", bridgetest.PNGWithMetadata(t), []string{"eXIf", "tEXt", "iTXt", "John Smith", "tIME"}},
		{"plain png", pngb.Bytes(), nil},
		{"webp with EXIF and XMP", bridgetest.WebPWithMetadata(t), []string{"EXIF", "XMP ", "John Smith"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := image.Decode(bytes.NewReader(tc.in)); err != nil {
				t.Fatalf("the test's input does not decode: %v", err)
			}
			if strings.Contains(tc.name, "EXIF") && !hasEXIF(tc.in) {
				t.Fatal("go-exif finds no EXIF in the test's input")
			}
			out, ok, err := bridge.StripMetadata(tc.in)
			if err != nil || !ok {
				t.Fatalf("StripMetadata: ok=%v err=%v", ok, err)
			}
			if hasEXIF(out) {
				t.Error("EXIF survived")
			}
			for _, l := range tc.leaks {
				if !bytes.Contains(tc.in, []byte(l)) {
					t.Fatalf("the test's input lacks %q", l)
				}
				if bytes.Contains(out, []byte(l)) {
					t.Errorf("%q survived", l)
				}
			}
			want, _, err := image.Decode(bytes.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := image.Decode(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("the stripped image does not decode: %v", err)
			}
			if !samePixels(want, got) {
				t.Error("the stripped image's pixels differ")
			}
			again, _, _ := bridge.StripMetadata(out)
			if !bytes.Equal(again, out) {
				t.Error("stripping twice changes the image again")
			}
		})
	}
	t.Run("other data is left alone", func(t *testing.T) {
		in := []byte("%PDF-1.4 a document")
		out, ok, err := bridge.StripMetadata(in)
		if ok || err != nil || !bytes.Equal(out, in) {
			t.Errorf("got ok=%v err=%v", ok, err)
		}
	})
	t.Run("a damaged jpeg is refused", func(t *testing.T) {
		in := bridgetest.JPEGWithMetadata(t)
		if _, _, err := bridge.StripMetadata(in[:40]); !errors.Is(err, bridge.ErrBadImage) {
			t.Errorf("err = %v, want ErrBadImage", err)
		}
	})
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}

// FuzzStripMetadata: whatever decodes before stripping decodes after, to the same pixels, and
// holds no EXIF; a GIF keeps every frame, delay and its loop count, and only the blocks that draw
// and animate it (fuzzGIF); an MP4 or QuickTime file has exactly its metadata boxes blanked, and
// nothing else changed (fuzzMP4); an MP3 or FLAC keeps its audio byte for byte, without tags
// (fuzzAudio). Run longer with: go test -tags goolm -run '^$' -fuzz FuzzStripMetadata ./bridge/
func FuzzStripMetadata(f *testing.F) {
	f.Add(bridgetest.JPEGWithMetadata(f))
	f.Add(bridgetest.PNGWithMetadata(f))
	f.Add(bridgetest.WebPWithMetadata(f))
	gifMeta, gifClean := gifWithMetadata(f) // image/gif, imported there, registers GIF for image.Decode
	f.Add(gifMeta)
	f.Add(gifClean)
	f.Add([]byte(gifHeader + "\x21\xfe\x01A\x00" + gifDelay + gifPixel + "\x21\x01\x0c" + strings.Repeat("\x01", 12) + "\x02hi\x00;"))
	f.Add(withBlocks(f, gifClean, map[int][]byte{1: gifXMP("<x:xmpmeta>John Smith</x:xmpmeta>")}))
	iphone, large := iphoneParts(), iphoneParts() // strip_mp4_test.go
	large.large, large.mdatZero = true, false
	f.Add(mp4File(iphone))
	f.Add(mp4File(large))
	f.Add(mp4File(mp4Parts{ftyp: mp4Ftyp("isom", "isom"), mdatZero: true}))
	f.Add(slices.Concat(mp4Box("wide"), mp4Box("mdat", []byte("frames")), mp4Box("moov", mp4Box("udta", qtText("\xa9xyz", mp4Location)), zeros(4))))
	f.Add(cat(johnSmithID3(), mp3Frames(3), lyrics3v2(), apev2(), id3v1Enhanced(), id3v1()))
	f.Add(cat(mp3Frames(2), id3v2(4, true, 0, "TPE1", "\x03John Smith"), id3v1()))
	f.Add(flacWithTags())
	f.Add(cat(johnSmithID3(), flacWithTags(), id3v1()))
	f.Fuzz(func(t *testing.T, in []byte) {
		if bytes.HasPrefix(in, []byte("GIF")) {
			fuzzGIF(t, in)
		}
		if looksMP4(in) {
			fuzzMP4(t, in)
		}
		fuzzAudio(t, in) // strip_audio_test.go
		want, _, err := image.Decode(bytes.NewReader(in))
		if err != nil {
			_, _, _ = bridge.StripMetadata(in) // must not panic
			return
		}
		if b := want.Bounds(); b.Dx()*b.Dy() > 1<<20 {
			return
		}
		out, ok, err := bridge.StripMetadata(in)
		// Stripping in place (what the bridge does, to hold a file once) gives the same bytes.
		inPlace, ok2, err2 := bridge.StripInPlace(bytes.Clone(in))
		if ok != ok2 || (err == nil) != (err2 == nil) || (err == nil && !bytes.Equal(out, inPlace)) {
			t.Fatalf("in place: ok %v err %v, copy: ok %v err %v; same bytes: %v", ok2, err2, ok, err, bytes.Equal(out, inPlace))
		}
		if err != nil {
			if ok {
				return // refused as damaged: nothing relayed, nothing leaked
			}
			t.Fatalf("StripMetadata: %v", err)
		}
		if !ok {
			return // not JPEG/PNG/WebP/GIF (BMP, TIFF...): passed on as it is
		}
		got, _, err := image.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("decoded before stripping, not after: %v", err)
		}
		if !samePixels(want, got) {
			t.Fatal("pixels changed")
		}
		if hasEXIF(out) {
			t.Fatal("EXIF survived")
		}
	})
}

// fuzzGIF checks a GIF the filter takes, whether image/gif decodes it or not (it refuses unknown
// extensions, which browsers skip): only the blocks that draw and animate are left, and stripping
// again changes nothing; when image/gif decodes it, every frame, delay and the loop count stay.
func fuzzGIF(t *testing.T, in []byte) {
	out, ok, err := bridge.StripMetadata(in)
	if err != nil || !ok {
		return // refused as damaged, or not a GIF signature: the rest of the fuzz test checks that
	}
	if err := onlyRenderBlocks(out); err != nil {
		t.Fatal(err)
	}
	if again, _, err := bridge.StripMetadata(out); err != nil || !bytes.Equal(again, out) {
		t.Fatalf("stripping twice changes the GIF again (%v)", err)
	}
	if c, err := gif.DecodeConfig(bytes.NewReader(in)); err != nil || c.Width*c.Height > 1<<20 {
		return
	}
	if _, err := gif.DecodeAll(bytes.NewReader(in)); err == nil {
		if err := sameAnimation(in, out); err != nil {
			t.Fatalf("decoded with image/gif: %v", err)
		}
	}
}

// BenchmarkStripMetadata measures the filter on a 4 MiB JPEG with EXIF, XMP and IPTC.
func BenchmarkStripMetadata(b *testing.B) {
	small := bridgetest.JPEGWithMetadata(b)
	// Pad the entropy-coded data's size by repeating a comment-free body: a realistic photo size.
	img := image.NewRGBA(image.Rect(0, 0, 2048, 2048))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7 % 251)
	}
	var big bytes.Buffer
	if err := jpeg.Encode(&big, img, &jpeg.Options{Quality: 95}); err != nil {
		b.Fatal(err)
	}
	// The metadata segments of the small fixture, then the big image's own.
	in := append(append([]byte(nil), small[:bytes.Index(small, []byte{0xFF, 0xDB})]...), big.Bytes()[2:]...)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bridge.StripMetadata(in); err != nil {
			b.Fatal(err)
		}
	}
}
