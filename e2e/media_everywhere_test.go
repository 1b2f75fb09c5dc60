package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	exif "github.com/dsoprea/go-exif/v3"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// mediaKind is one kind of media a member sends in TestMediaEverywhere.
type mediaKind string

const (
	kindPhoto   mediaKind = "photo"
	kindFile    mediaKind = "file"
	kindVoice   mediaKind = "voice"
	kindVideo   mediaKind = "video"
	kindSticker mediaKind = "sticker"
)

// gotFile is one file a member's chat was shown: its name there and its bytes (decrypted).
type gotFile struct {
	name string
	data []byte
}

// mediaPerson is a member who sends media as their platform's users do and lists the files their
// chat shows.
type mediaPerson interface {
	person
	// sendMedia sends data under its original name (what must not cross the room) with a caption.
	sendMedia(t testing.TB, ctx context.Context, kind mediaKind, name, mimeType, caption string, data []byte)
	received(t testing.TB, ctx context.Context) []gotFile
}

func (p *tgPerson) sendMedia(_ testing.TB, _ context.Context, kind mediaKind, name, mimeType, caption string, data []byte) {
	in := telegramtest.Incoming{From: p.u, File: data, Caption: caption}
	switch kind {
	case kindPhoto:
		in.Media = "photo" // Telegram's own (re-encoded) photo: it carries no name
	case kindVoice:
		in.Media, in.MIME = "voice", mimeType
	case kindVideo:
		in.Media, in.FileName, in.MIME = "video", name, mimeType
	case kindSticker:
		in.Media, in.Caption = "sticker", "" // a sticker has no caption
	default:
		in.Media, in.FileName, in.MIME = "document", name, mimeType
	}
	p.fake.Inject(in)
}

func (p *tgPerson) received(testing.TB, context.Context) []gotFile {
	var out []gotFile
	for _, s := range p.fake.Sent(p.u.ID) {
		if s.FileData != nil {
			out = append(out, gotFile{s.FileName, s.FileData})
		}
	}
	return out
}

func (p *dcPerson) sendMedia(_ testing.TB, _ context.Context, kind mediaKind, name, mimeType, caption string, data []byte) {
	flags := 0
	switch kind {
	case kindVoice:
		flags, caption = discordtest.FlagVoiceMessage, "" // a voice message carries no text
	case kindSticker:
		p.fake.SendDMSticker(p.u.ID, "", p.fake.AddSticker(name, discordtest.StickerPNG, data))
		return
	}
	p.fake.SendDMFiles(p.u.ID, caption, flags, discordtest.Attachment{Filename: name, ContentType: mimeType, Data: data})
}

func (p *dcPerson) received(testing.TB, context.Context) []gotFile {
	var out []gotFile
	for _, m := range p.fake.Messages(p.ch) {
		for _, a := range m.Attachments {
			out = append(out, gotFile{a.Filename, a.Data})
		}
	}
	return out
}

func (p *mxPerson) sendMedia(t testing.TB, ctx context.Context, kind mediaKind, name, mimeType, _ string, data []byte) {
	switch kind {
	case kindPhoto:
		p.sendFile(t, ctx, event.MsgImage, name, mimeType, data)
	case kindVoice:
		p.sendVoice(t, ctx, mimeType, data)
	case kindVideo:
		p.sendFile(t, ctx, event.MsgVideo, name, mimeType, data)
	case kindSticker:
		p.sendSticker(t, ctx, name, mimeType, data)
	default:
		p.sendFile(t, ctx, event.MsgFile, name, mimeType, data)
	}
}

// received decrypts each attachment the bot sent once (kept in p.decrypted by event id).
func (p *mxPerson) received(t testing.TB, ctx context.Context) []gotFile {
	t.Helper()
	var out []gotFile
	for _, e := range p.u.Messages(p.dm, p.bot) {
		c := e.Content.AsMessage()
		if c == nil || (c.File == nil && c.URL == "") {
			continue
		}
		if c.File == nil {
			t.Errorf("the bot sent the Matrix member a plain (unencrypted) attachment %q", c.Body)
		}
		if p.decrypted == nil {
			p.decrypted = map[id.EventID][]byte{}
		}
		data, ok := p.decrypted[e.ID]
		if !ok && ctx.Err() != nil {
			continue // the test is reporting: what was downloaded is what it shows
		}
		if !ok {
			var err error
			if data, err = p.u.Download(ctx, c); err != nil {
				t.Fatalf("matrix download: %v", err)
			}
			p.decrypted[e.ID] = data
		}
		name := c.FileName
		if name == "" {
			name = c.Body
		}
		out = append(out, gotFile{name, data})
	}
	return out
}

func (p *webPerson) sendMedia(t testing.TB, ctx context.Context, _ mediaKind, name, mimeType, caption string, data []byte) {
	p.upload(t, ctx, name, mimeType, caption, data)
}

// received downloads each file the page was offered once (kept in p.fetched by URL); with ctx
// ended it reports what it has.
func (p *webPerson) received(t testing.TB, ctx context.Context) []gotFile {
	t.Helper()
	if p.fetched == nil {
		p.fetched = map[string][]byte{}
	}
	var out []gotFile
	for _, m := range p.offered() {
		data, ok := p.fetched[m.URL]
		if !ok {
			if ctx.Err() != nil {
				continue
			}
			var status int
			if status, data = p.download(t, ctx, m); status != http.StatusOK {
				t.Fatalf("web download of %s: %d", m.Name, status)
			}
			p.fetched[m.URL] = data
		}
		out = append(out, gotFile{m.Name, data})
	}
	return out
}

// countFile is how many of the files shown are name with exactly want's bytes.
func countFile(fs []gotFile, name string, want []byte) int {
	n := 0
	for _, f := range fs {
		if f.name == name && bytes.Equal(f.data, want) {
			n++
		}
	}
	return n
}

// TestMediaEverywhere: with the real binary, one member on each of Telegram, Discord, Matrix (an
// encrypted DM on the real Dendrite) and the web page; each sends a photo with EXIF GPS, a file
// under a name that gives them away and (where their platform records one) a voice note, and
// every other member receives each one under a neutral name with the same bytes, the photo's
// metadata stripped: all twelve pairs of platforms, each way. So do a video and a sticker (where
// the platform has them).
func TestMediaEverywhere(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	k, tg, dc := startWithFakes(t, ctx, setup{Lifetime: time.Hour, Matrix: true, Web: true})
	members := []mediaPerson{newTG(tg, "Shutter"), newDC(dc, "shutter"), newMX(t, ctx, k, "shutter"), newWeb(t, ctx, k)}
	ps := make([]person, len(members))
	for i, m := range members {
		ps[i] = m
	}
	openRoom(t, ctx, secret("everywhere-"+randHex(6)+"-pw"), ps[0], ps[1:]...)

	jpeg, cleanJPEG := withAndWithout(t, bridgetest.JPEGWithMetadata(t))
	png, cleanPNG := withAndWithout(t, bridgetest.PNGWithMetadata(t))
	webp, cleanWebP := withAndWithout(t, bridgetest.WebPWithMetadata(t))
	// A phone's video: where it was shot is in moov/udta (©xyz), which kumo blanks.
	video, cleanVideo := withAndWithout(t, slices.Concat(
		mp4Box("ftyp", []byte("mp42\x00\x00\x00\x00mp42isom")),
		mp4Box("moov", mp4Box("udta", mp4Box("\xa9xyz", []byte("\x00\x12\x15\xc7+48.8584+002.2945/")))),
		mp4Box("mdat", randomBytes(t, 5000))))
	if bytes.Contains(cleanVideo, []byte("+48.8584")) {
		t.Fatal("the filter left the video's location")
	}
	for _, from := range members {
		sends := []struct {
			kind           mediaKind
			name, mimeType string
			data, want     []byte
			wantName       string
		}{
			{kindPhoto, "IMG_JohnSmith.jpg", "image/jpeg", jpeg, cleanJPEG, "photo.jpg"},
			{kindFile, "John Smith's notes.txt", "text/plain", randomBytes(t, 3000), nil, "file.txt"},
			// Discord names a voice message voice-message.ogg; Telegram and Element give it no name.
			{kindVoice, "voice-message.ogg", "audio/ogg", append([]byte("OggS"), randomBytes(t, 2000)...), nil, "voice.ogg"},
			{kindVideo, "John at the beach.mp4", "video/mp4", video, cleanVideo, "video.mp4"},
			{kindSticker, "John Smith's face", "image/png", png, cleanPNG, "sticker.png"},
		}
		for _, s := range sends {
			if (s.kind == kindVoice || s.kind == kindSticker) && from.platform() == "web" {
				continue // the page uploads files; it records no voice notes and has no stickers
			}
			switch {
			case from.platform() == "telegram" && s.kind == kindPhoto:
				// A Telegram photo is Telegram's own re-encoding, without metadata: it arrives as is.
				s.data = cleanJPEG
			case from.platform() == "telegram" && s.kind == kindSticker:
				s.data, s.want, s.wantName = webp, cleanWebP, "sticker.webp" // Telegram's are WebP
			}
			if s.want == nil {
				s.want = s.data
			}
			others := map[mediaPerson]int{}
			for _, p := range members {
				if p != from {
					others[p] = countFile(p.received(t, ctx), s.wantName, s.want)
				}
			}
			what := from.platform() + "'s " + string(s.kind)
			from.sendMedia(t, ctx, s.kind, s.name, s.mimeType, "look "+randHex(3), s.data)
			for p, before := range others {
				for countFile(p.received(t, ctx), s.wantName, s.want) == before {
					select {
					case <-ctx.Done():
						t.Fatalf("%s never reached %s as %s with the bytes sent (metadata stripped); it was shown %s",
							what, p.platform(), s.wantName, describe(p.received(t, ctx)))
					case <-time.After(100 * time.Millisecond):
					}
				}
				for _, f := range p.received(t, ctx) {
					if strings.Contains(f.name, "John") {
						t.Errorf("%s was shown a file named %q", p.platform(), f.name)
					}
					if bytes.Contains(f.data, []byte("+48.8584")) {
						t.Errorf("%s's %s from %s still says where it was shot", p.platform(), f.name, from.platform())
					}
					if strings.HasSuffix(f.name, ".jpg") {
						if _, err := exif.SearchAndExtractExif(f.data); !errors.Is(err, exif.ErrNoExif) {
							t.Errorf("%s's photo from %s has EXIF", p.platform(), from.platform())
						}
					}
				}
			}
		}
	}
}

// mp4Box is one ISO BMFF box: its 32-bit size, its type and its payload.
func mp4Box(typ string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	return append(append(b, typ...), payload...)
}

// withAndWithout is a file with its metadata and the same file as kumo relays it.
func withAndWithout(t testing.TB, img []byte) (with, without []byte) {
	t.Helper()
	clean, _, err := bridge.StripMetadata(img)
	if err != nil {
		t.Fatal(err)
	}
	return img, clean
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func describe(fs []gotFile) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%s (%d B)", f.name, len(f.data)))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
