package bridgetest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// The images below carry the metadata a phone or camera writes, with the name "John Smith" and a GPS
// position in it: what kumo must never relay.

// EXIFWithGPS is a little-endian TIFF/EXIF block with an Artist ("John Smith") and a GPS IFD (north,
// 51°30'26").
func EXIFWithGPS() []byte {
	le := binary.LittleEndian
	b := make([]byte, 104)
	copy(b, "II*\x00")
	le.PutUint32(b[4:], 8)
	entry := func(at int, tag, typ uint16, count, value uint32) {
		le.PutUint16(b[at:], tag)
		le.PutUint16(b[at+2:], typ)
		le.PutUint32(b[at+4:], count)
		le.PutUint32(b[at+8:], value)
	}
	le.PutUint16(b[8:], 2)               // IFD0: two entries
	entry(10, 0x013B, 2, 11, 38)         // Artist, ASCII, at 38
	entry(22, 0x8825, 4, 1, 50)          // GPSInfo IFD at 50
	copy(b[38:], "John Smith\x00")       // next IFD offset (34..38) stays 0
	le.PutUint16(b[50:], 2)              // GPS IFD: two entries
	entry(52, 0x0001, 2, 2, uint32('N')) // GPSLatitudeRef "N" inline
	entry(64, 0x0002, 5, 3, 80)          // GPSLatitude, 3 rationals at 80
	for i, v := range []uint32{51, 1, 30, 1, 26, 1} {
		le.PutUint32(b[80+4*i:], v)
	}
	return b
}

func pattern() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		for y := range 16 {
			img.Set(x, y, color.RGBA{uint8(x * 16), uint8(y * 16), 100, 255})
		}
	}
	return img
}

// JPEGWithMetadata is a JPEG with EXIF (GPS), XMP, IPTC, a comment and a trailer after its end.
func JPEGWithMetadata(t testing.TB) []byte {
	t.Helper()
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, pattern(), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	seg := func(code byte, payload []byte) []byte {
		s := []byte{0xFF, code, 0, 0}
		binary.BigEndian.PutUint16(s[2:], uint16(len(payload)+2))
		return append(s, payload...)
	}
	out := []byte{0xFF, 0xD8}
	out = append(out, seg(0xE1, append([]byte("Exif\x00\x00"), EXIFWithGPS()...))...)
	out = append(out, seg(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><dc:creator>John Smith</dc:creator></x:xmpmeta>"))...)
	out = append(out, seg(0xED, []byte("Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0e\x1c\x02\x50\x00\x0aJohn Smith"))...)
	out = append(out, seg(0xFE, []byte("shot by John Smith"))...)
	out = append(out, enc.Bytes()[2:]...)
	return append(out, "secret trailer: John Smith"...)
}

// PNGWithMetadata is a PNG with eXIf (GPS), tEXt, iTXt (XMP) and tIME chunks.
func PNGWithMetadata(t testing.TB) []byte {
	t.Helper()
	var enc bytes.Buffer
	if err := png.Encode(&enc, pattern()); err != nil {
		t.Fatal(err)
	}
	chunk := func(typ string, data []byte) []byte {
		c := make([]byte, 8, 12+len(data))
		binary.BigEndian.PutUint32(c, uint32(len(data)))
		copy(c[4:], typ)
		c = append(c, data...)
		return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
	}
	raw := enc.Bytes()
	iend := len(raw) - 12
	out := append([]byte(nil), raw[:33]...) // signature and IHDR
	out = append(out, chunk("eXIf", EXIFWithGPS())...)
	out = append(out, chunk("tEXt", []byte("Author\x00John Smith"))...)
	out = append(out, chunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta>John Smith</x:xmpmeta>"))...)
	out = append(out, chunk("tIME", []byte{0x07, 0xEA, 12, 4, 3, 0, 0})...)
	out = append(out, raw[33:iend]...)
	return append(out, raw[iend:]...)
}

// webpLossless1x1 is a 1×1 lossless WebP (the VP8L chunk only).
const webpLossless1x1 = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="

// WebPWithMetadata is an extended (VP8X) WebP announcing and carrying EXIF (GPS) and XMP chunks.
func WebPWithMetadata(t testing.TB) []byte {
	t.Helper()
	simple, err := base64.StdEncoding.DecodeString(webpLossless1x1)
	if err != nil {
		t.Fatal(err)
	}
	chunk := func(typ string, data []byte) []byte {
		c := make([]byte, 8, 9+len(data))
		copy(c, typ)
		binary.LittleEndian.PutUint32(c[4:], uint32(len(data)))
		c = append(c, data...)
		if len(data)%2 == 1 {
			c = append(c, 0)
		}
		return c
	}
	vp8x := make([]byte, 10) // flags, reserved, canvas width-1 and height-1 (0: 1×1)
	vp8x[0] = 0x08 | 0x04    // EXIF and XMP present
	body := []byte("WEBP")
	body = append(body, chunk("VP8X", vp8x)...)
	body = append(body, simple[12:]...) // the VP8L chunk
	body = append(body, chunk("EXIF", EXIFWithGPS())...)
	body = append(body, chunk("XMP ", []byte("<x:xmpmeta>John Smith</x:xmpmeta>"))...)
	out := []byte("RIFF\x00\x00\x00\x00")
	binary.LittleEndian.PutUint32(out[4:], uint32(len(body)))
	return append(out, body...)
}
