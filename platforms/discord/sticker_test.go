package discord

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// stickerName is what every test sticker is called: a server's custom sticker named after its
// maker. It must reach nobody.
const stickerName = "Alice Smith's cat"

// pngChunk is one PNG chunk, its length and CRC computed.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// pngChunks are the chunk types of a PNG in order; it fails the test on a malformed one.
func pngChunks(t *testing.T, data []byte) []string {
	t.Helper()
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("not a PNG: % x", data[:min(8, len(data))])
	}
	var types []string
	for i := 8; i < len(data); {
		if i+12 > len(data) {
			t.Fatalf("truncated chunk at %d", i)
		}
		n := int(binary.BigEndian.Uint32(data[i:]))
		end := i + 12 + n
		if end > len(data) || crc32.ChecksumIEEE(data[i+4:end-4]) != binary.BigEndian.Uint32(data[end-4:]) {
			t.Fatalf("bad chunk %q at %d", data[i+4:i+8], i)
		}
		types = append(types, string(data[i+4:i+8]))
		i = end
	}
	return types
}

func frameImage(shade uint8) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		for y := range 8 {
			img.Set(x, y, color.RGBA{shade, uint8(x * 32), uint8(y * 32), 255})
		}
	}
	return img
}

// idat is the image data of an encoded PNG, its IDAT chunks' payloads joined.
func idat(t *testing.T, img image.Image) []byte {
	t.Helper()
	var enc bytes.Buffer
	if err := png.Encode(&enc, img); err != nil {
		t.Fatal(err)
	}
	raw := enc.Bytes()
	var out []byte
	for i := 8; i < len(raw); {
		n := int(binary.BigEndian.Uint32(raw[i:]))
		if string(raw[i+4:i+8]) == "IDAT" {
			out = append(out, raw[i+8:i+8+n]...)
		}
		i += 12 + n
	}
	return out
}

// apngWithMetadata is a two-frame APNG (acTL, fcTL, IDAT as the first frame, fcTL and fdAT the
// second), carrying tEXt, iTXt and tIME chunks that name its maker.
func apngWithMetadata(t *testing.T) []byte {
	t.Helper()
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 8)
	binary.BigEndian.PutUint32(ihdr[4:], 8)
	// 8 bits, RGB (colour type 2): png.Encode writes the opaque frames so, and their data must match.
	ihdr[8], ihdr[9] = 8, 2
	fctl := func(seq uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, seq)
		b = binary.BigEndian.AppendUint32(b, 8) // width
		b = binary.BigEndian.AppendUint32(b, 8) // height
		b = binary.BigEndian.AppendUint32(b, 0) // x
		b = binary.BigEndian.AppendUint32(b, 0) // y
		b = binary.BigEndian.AppendUint16(b, 1) // delay 1/10 s
		b = binary.BigEndian.AppendUint16(b, 10)
		return append(b, 0, 0) // dispose none, blend source
	}
	actl := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 2), 0) // 2 frames, loop forever
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("acTL", actl)...)
	out = append(out, pngChunk("tEXt", []byte("Author\x00John Smith"))...)
	out = append(out, pngChunk("fcTL", fctl(0))...)
	out = append(out, pngChunk("IDAT", idat(t, frameImage(0)))...)
	out = append(out, pngChunk("fcTL", fctl(1))...)
	out = append(out, pngChunk("fdAT", append(binary.BigEndian.AppendUint32(nil, 2), idat(t, frameImage(200))...))...)
	out = append(out, pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta>John Smith</x:xmpmeta>"))...)
	out = append(out, pngChunk("tIME", []byte{0x07, 0xEA, 12, 4, 3, 0, 0})...)
	out = append(out, pngChunk("IEND", nil)...)
	if _, err := png.Decode(bytes.NewReader(out)); err != nil {
		t.Fatalf("the test's APNG does not decode: %v", err)
	}
	return out
}

// animatedGIF is a two-frame GIF.
func animatedGIF(t *testing.T) []byte {
	t.Helper()
	var g gif.GIF
	for _, shade := range []uint8{0, 200} {
		p := image.NewPaletted(image.Rect(0, 0, 8, 8), palette.Plan9)
		for x := range 8 {
			p.Set(x, x, color.RGBA{shade, 0, 0, 255})
		}
		g.Image = append(g.Image, p)
		g.Delay = append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestInboundStickers: a sticker sent to the bot reaches the core as Discord serves it, a PNG or
// APNG as an image/png sticker, a GIF as an image/gif one, each fetched from the CDN with a neutral
// name; a Lottie sticker, which has no image, as a short line; one of a format unknown to kumo as
// something not relayed. The sticker's name never reaches the core.
func TestInboundStickers(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	in := &bridgetest.Inbox{}
	e.run(t, in)
	alice := e.fake.AddUser("alice")
	from := bridge.Addr{Platform: "discord", User: alice.ID, Chat: e.fake.DMChannel(alice.ID)}
	apng := apngWithMetadata(t)
	anim := animatedGIF(t)

	tests := []struct {
		name    string
		sticker discordtest.Sticker
		content string
		want    bridge.Inbound // From and ID are the message's
		mime    string         // of the attachment, when there is one
		fetched []byte         // what its Fetch returns; nil when it fails (the CDN's 404)
	}{
		{"png", e.fake.AddSticker(stickerName, discordtest.StickerPNG, bridgetest.PNGWithMetadata(t)), "",
			bridge.Inbound{Attachments: []bridge.Attachment{{Kind: bridge.MediaSticker, Name: "sticker.png"}}}, "image/png", bridgetest.PNGWithMetadata(t)},
		{"apng with a caption", e.fake.AddSticker(stickerName, discordtest.StickerAPNG, apng), "look",
			bridge.Inbound{Text: "look", Attachments: []bridge.Attachment{{Kind: bridge.MediaSticker, Name: "sticker.png"}}}, "image/png", apng},
		{"gif", e.fake.AddSticker(stickerName, discordtest.StickerGIF, anim), "",
			bridge.Inbound{Attachments: []bridge.Attachment{{Kind: bridge.MediaSticker, Name: "sticker.gif"}}}, "image/gif", anim},
		{"lottie", e.fake.AddSticker(stickerName, discordtest.StickerLottie, []byte(`{"v":"5.5.2"}`)), "",
			bridge.Inbound{Text: stickerLine}, "", nil},
		{"lottie with text", e.fake.AddSticker(stickerName, discordtest.StickerLottie, []byte(`{"v":"5.5.2"}`)), "hey",
			bridge.Inbound{Text: "hey\n" + stickerLine}, "", nil},
		{"png the CDN does not know", discordtest.Sticker{ID: "4242", Name: stickerName, Format: discordtest.StickerPNG}, "",
			bridge.Inbound{Attachments: []bridge.Attachment{{Kind: bridge.MediaSticker, Name: "sticker.png"}}}, "image/png", nil},
		{"a format newer than kumo", e.fake.AddSticker(stickerName, 9, []byte("?")), "",
			bridge.Inbound{NonText: true}, "", nil},
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := e.fake.SendDMSticker(alice.ID, tc.content, tc.sticker)
			got := in.Next(t, ctx)
			want := tc.want
			want.From, want.ID = from, bridge.MessageID(id)
			if !bridgetest.SameInbound(got, want) {
				t.Fatalf("inbound = %+v, want %+v", got, want)
			}
			if strings.Contains(got.Text, stickerName) {
				t.Errorf("the sticker's name reached the core: %q", got.Text)
			}
			if len(got.Attachments) == 0 {
				return
			}
			at := got.Attachments[0]
			if at.MIME != tc.mime || at.Native != "" {
				t.Errorf("attachment MIME %q, Native %q; want %q and none", at.MIME, at.Native, tc.mime)
			}
			data, err := at.Fetch(ctx, maxSticker)
			if tc.fetched == nil {
				if err == nil {
					t.Errorf("fetching a sticker the CDN does not know gave %d bytes", len(data))
				}
				return
			}
			if err != nil || !bytes.Equal(data, tc.fetched) {
				t.Fatalf("fetched %d bytes (%v), want the %d the CDN serves", len(data), err, len(tc.fetched))
			}
		})
	}
}

// TestCoreRelaysStickers: through the core, a Discord sticker reaches another Discord member and a
// member on a platform with media as an image: a PNG or APNG without its text, eXIf and tIME
// chunks (an APNG still animated), a GIF as it is, each named neutrally; a Lottie sticker as a
// short line under the sender's pseudonym. The sticker's name reaches nobody, and a Lottie sticker
// from someone in no room is not taken for a password.
func TestCoreRelaysStickers(t *testing.T) {
	other := bridgetest.NewMedia("other", bridge.Limits{MaxText: 4096}, 50<<20)
	c := startCoreOn(t, discordtest.Options{}, other, other.Platform)
	alice, bob := c.fake.AddUser("alice"), c.fake.AddUser("bob")
	pw := c.openRoom(t, alice)
	n := c.dmCount(bob)
	c.fake.SendDM(bob.ID, "/join "+pw)
	c.dmWith(t, bob, n, "You joined the room")
	olly := other.User("olly")
	other.Say(t, olly, pw)
	other.WaitText(t, olly.Chat, "You joined the room")
	_, me, err := c.b.Store().RoomOf(bridge.Addr{Platform: "discord", User: alice.ID}.Key())
	if err != nil {
		t.Fatal(err)
	}

	leaks := []string{"tEXt", "iTXt", "zTXt", "eXIf", "tIME"}
	tests := []struct {
		name     string
		format   int
		data     []byte
		caption  string
		wantName string // of the file both members get; "" for a Lottie sticker's line
		wantMIME string
		// animation are the APNG chunks that must survive; same says the bytes arrive unchanged.
		animation []string
		same      bool
	}{
		{"png", discordtest.StickerPNG, bridgetest.PNGWithMetadata(t), "", "sticker.png", "image/png", nil, false},
		{"apng", discordtest.StickerAPNG, apngWithMetadata(t), "so animated", "sticker.png", "image/png", []string{"acTL", "fcTL", "IDAT", "fcTL", "fdAT"}, false},
		{"gif", discordtest.StickerGIF, animatedGIF(t), "", "sticker.gif", "image/gif", nil, true},
		{"lottie", discordtest.StickerLottie, []byte(`{"v":"5.5.2"}`), "", "", "", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := c.fake.AddSticker(stickerName, tc.format, tc.data)
			nb, no := c.dmCount(bob), len(other.Media(olly.Chat))
			c.fake.SendDMSticker(alice.ID, tc.caption, st)
			if tc.wantName == "" {
				got := c.dmWith(t, bob, nb, me.Nick)
				if !strings.Contains(got.Content, stickerLine) || len(got.Attachments) != 0 || strings.Contains(got.Content, stickerName) {
					t.Errorf("bob got %q with %d files, want the sticker's line only", got.Content, len(got.Attachments))
				}
				m := other.WaitText(t, olly.Chat, stickerLine)
				if m.From != me.Nick || strings.Contains(m.String(), stickerName) {
					t.Errorf("olly got %q", m.String())
				}
				return
			}
			got := c.dmWith(t, bob, nb, me.Nick)
			if len(got.Attachments) != 1 || strings.Contains(got.Content, stickerName) {
				t.Fatalf("bob got %+v, want one file", got)
			}
			f := got.Attachments[0]
			if f.Filename != tc.wantName || f.ContentType != tc.wantMIME {
				t.Errorf("bob got %q (%s), want %q (%s)", f.Filename, f.ContentType, tc.wantName, tc.wantMIME)
			}
			if tc.caption != "" && !strings.Contains(got.Content, tc.caption) {
				t.Errorf("bob's message %q lacks the caption", got.Content)
			}
			switch {
			case tc.same:
				if !bytes.Equal(f.Data, tc.data) {
					t.Errorf("bob got %d bytes, want the %d sent", len(f.Data), len(tc.data))
				}
			default:
				chunks := pngChunks(t, f.Data)
				for _, l := range leaks {
					if slices.Contains(chunks, l) {
						t.Errorf("bob's sticker keeps a %s chunk: %v", l, chunks)
					}
				}
				if bytes.Contains(f.Data, []byte("John Smith")) {
					t.Error("bob's sticker still names its maker")
				}
				if tc.animation != nil && !slices.Equal(slices.DeleteFunc(slices.Clone(chunks), func(c string) bool { return !slices.Contains(tc.animation, c) }), tc.animation) {
					t.Errorf("bob's APNG chunks %v lost its animation (want %v in order)", chunks, tc.animation)
				}
				if _, err := png.Decode(bytes.NewReader(f.Data)); err != nil {
					t.Errorf("bob's sticker does not decode: %v", err)
				}
			}
			other.WaitFor(t, olly.Chat, wait, "the sticker", func([]bridge.Message) bool { return len(other.Media(olly.Chat)) > no })
			om := other.Media(olly.Chat)[no]
			if om.Kind != bridge.MediaSticker || om.MIME != tc.wantMIME || om.Name != tc.wantName || om.Sum != sha256.Sum256(f.Data) {
				t.Errorf("olly got %s %s %q (%d bytes), want a %s sticker %q, the bytes bob got", om.Kind, om.MIME, om.Name, om.Len, tc.wantMIME, tc.wantName)
			}
		})
	}

	t.Run("lottie with text, edited", func(t *testing.T) {
		// MESSAGE_UPDATE carries the sticker again: the edited copies keep its line.
		st := c.fake.AddSticker(stickerName, discordtest.StickerLottie, []byte(`{"v":"5.5.2"}`))
		nb := c.dmCount(bob)
		id := c.fake.SendDMSticker(alice.ID, "first words", st)
		orig := c.dmWith(t, bob, nb, "first words")
		c.fake.EditDM(alice.ID, id, "second words")
		var edited discordtest.Message
		c.waitFake(t, "bob's copy edited", func() bool {
			for _, m := range c.fake.Messages(c.fake.DMChannel(bob.ID)) {
				if m.ID == orig.ID && m.Edits > 0 {
					edited = m
					return true
				}
			}
			return false
		})
		if !strings.Contains(edited.Content, "second words") || !strings.Contains(edited.Content, stickerLine) {
			t.Errorf("bob's edited copy reads %q, want the new text and the sticker's line", edited.Content)
		}
		m := other.WaitText(t, olly.Chat, "second words")
		if !strings.Contains(m.Text, stickerLine) {
			t.Errorf("olly's edited copy reads %q, want the sticker's line with it", m.Text)
		}
	})

	t.Run("lottie from someone in no room", func(t *testing.T) {
		carol := c.fake.AddUser("carol")
		st := c.fake.AddSticker(stickerName, discordtest.StickerLottie, []byte(`{"v":"5.5.2"}`))
		c.fake.SendDMSticker(carol.ID, "", st)
		c.dmWith(t, carol, 0, "You are not in a room. Send /newroom")
		if ms := c.fake.Messages(c.fake.DMChannel(carol.ID)); len(ms) != 1 {
			t.Errorf("carol got %q, want only that she is in no room (not a password's answer)", contents(ms))
		}
	})
}
