package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	exif "github.com/dsoprea/go-exif/v3"

	"maunium.net/go/mautrix/event"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// TestMediaAcrossPlatforms: the real binary relays media between Telegram and Discord (their fakes
// with their real limits): a JPEG sent on Telegram as a file, with EXIF GPS, reaches Discord under
// a neutral name without EXIF; a PNG sent on Discord reaches Telegram as a photo without its text
// chunks; a file over Discord's 10 MiB is refused to its sender only, and Telegram's member gets it.
func TestMediaAcrossPlatforms(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, tg, dc := startWithFakes(t, ctx, setup{Lifetime: time.Hour})
	tess, tom, dana := newTG(tg, "Tess"), newTG(tg, "Tom"), newDC(dc, "dana")
	nicks := openRoom(t, ctx, secret("media-"+randHex(6)), tess, tom, dana)

	jpeg := bridgetest.JPEGWithMetadata(t)
	cleanJPEG, _, err := bridge.StripMetadata(jpeg)
	if err != nil {
		t.Fatal(err)
	}
	tg.Inject(telegramtest.Incoming{From: tess.u, Media: "document", File: jpeg, FileName: "IMG_JohnSmith.jpg", MIME: "image/jpeg", Caption: "a file"})
	var got discordtest.Message
	if err := dc.Wait(ctx, func() bool {
		for _, m := range dc.Messages(dana.ch) {
			if len(m.Attachments) == 1 && m.Attachments[0].Filename == "file.jpg" {
				got = m
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("dana never got the file: %v", err)
	}
	if !bytes.Equal(got.Attachments[0].Data, cleanJPEG) {
		t.Errorf("dana's file is %d bytes, want the %d of the JPEG without metadata", len(got.Attachments[0].Data), len(cleanJPEG))
	}
	if _, err := exif.SearchAndExtractExif(got.Attachments[0].Data); !errors.Is(err, exif.ErrNoExif) {
		t.Error("dana's file has EXIF")
	}
	if want := nicks[tess]; !bytes.Contains([]byte(discordPlain(got.Content)), []byte(want+": a file")) {
		t.Errorf("dana's message %q, want it from %s with the caption", got.Content, want)
	}

	png := bridgetest.PNGWithMetadata(t)
	cleanPNG, _, err := bridge.StripMetadata(png)
	if err != nil {
		t.Fatal(err)
	}
	dc.SendDMFiles(dana.u.ID, "", 0, discordtest.Attachment{Filename: "Screenshot John Smith.png", ContentType: "image/png", Data: png})
	photoTo(t, ctx, tg, tess, cleanPNG)

	mark := len(tess.seen())
	tg.Inject(telegramtest.Incoming{From: tess.u, Media: "document", File: make([]byte, 11<<20), FileName: "big.bin", Caption: "big one"})
	waitSeen(t, ctx, tess, mark, "the too-big answer", contains("too big for the members on discord"))
	waitSeen(t, ctx, tom, 0, "the big file's caption", contains(nicks[tess]+": big one"))
	for _, m := range dc.Messages(dana.ch) {
		if bytes.Contains([]byte(m.Content), []byte("big one")) || bytes.Contains([]byte(m.Content), []byte("too big")) {
			t.Errorf("dana was shown %q", m.Content)
		}
	}
}

// TestMediaWeb: the real binary relays media between Telegram and the web page's own protocol: a
// PNG the web member uploads (POST /media with the session's secret) reaches Telegram as a photo
// without its text chunks; a JPEG sent on Telegram as a file with EXIF GPS is offered to the page at
// a /media/<id> URL under a neutral name, without EXIF, and that URL answers 404 once the room ends.
func TestMediaWeb(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tg := telegramtest.New(t)
	k := startKumo(t, setup{Lifetime: time.Hour, Telegram: tg, Web: true})
	readyFakes(t, ctx, k, tg, nil)
	tess, wendy := newTG(tg, "Tess"), newWeb(t, ctx, k)
	nicks := openRoom(t, ctx, secret("wmedia-"+randHex(6)), tess, wendy)

	png := bridgetest.PNGWithMetadata(t)
	cleanPNG, _, err := bridge.StripMetadata(png)
	if err != nil {
		t.Fatal(err)
	}
	wendy.upload(t, ctx, "Screenshot John Smith.png", "image/png", "a screenshot", png)
	m := photoTo(t, ctx, tg, tess, cleanPNG)
	if want := nicks[wendy] + ": a screenshot"; !bytes.Contains([]byte(m.Text), []byte(want)) {
		t.Errorf("tess's photo caption %q, want %q", m.Text, want)
	}

	jpeg := bridgetest.JPEGWithMetadata(t)
	cleanJPEG, _, err := bridge.StripMetadata(jpeg)
	if err != nil {
		t.Fatal(err)
	}
	mark := len(wendy.seen())
	tg.Inject(telegramtest.Incoming{From: tess.u, Media: "document", File: jpeg, FileName: "IMG_JohnSmith.jpg", MIME: "image/jpeg", Caption: "a file"})
	waitSeen(t, ctx, wendy, mark, "the file's caption", contains(nicks[tess]+": a file"))
	var got webMedia
	for _, m := range wendy.offered() {
		if m.Name == "file.jpg" {
			got = m
		}
	}
	if got.URL == "" {
		t.Fatalf("wendy was offered %+v, want file.jpg", wendy.offered())
	}
	status, data := wendy.download(t, ctx, got)
	if status != http.StatusOK || !bytes.Equal(data, cleanJPEG) {
		t.Errorf("wendy's download: %d, %d bytes; want 200 and the %d of the JPEG without metadata", status, len(data), len(cleanJPEG))
	}
	if _, err := exif.SearchAndExtractExif(data); !errors.Is(err, exif.ErrNoExif) {
		t.Error("wendy's file has EXIF")
	}

	mark = len(wendy.seen())
	tess.send(t, ctx, "/destroy")
	waitSeen(t, ctx, wendy, mark, "the room's end", contains("destroyed"))
	if status, _ := wendy.download(t, ctx, got); status != http.StatusNotFound {
		t.Errorf("after the room ended, the file's URL answers %d, want 404", status)
	}
}

// TestMediaMatrix: the real binary relays media between Telegram and a Matrix member in an
// encrypted DM on the real Dendrite: a JPEG sent on Telegram as a file with EXIF GPS reaches the
// Matrix member as an encrypted attachment (no plain URL) that decrypts to the JPEG without its
// metadata, under a neutral name; an encrypted PNG the Matrix member sends reaches Telegram as a
// photo without its text chunks.
func TestMediaMatrix(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tg := telegramtest.New(t)
	k := startKumo(t, setup{Lifetime: time.Hour, Telegram: tg, Matrix: true})
	readyFakes(t, ctx, k, tg, nil)
	tess, mia := newTG(tg, "Tess"), newMX(t, ctx, k, "media")
	nicks := openRoom(t, ctx, secret("mmedia-"+randHex(6)), tess, mia)

	jpeg := bridgetest.JPEGWithMetadata(t)
	cleanJPEG, _, err := bridge.StripMetadata(jpeg)
	if err != nil {
		t.Fatal(err)
	}
	tg.Inject(telegramtest.Incoming{From: tess.u, Media: "document", File: jpeg, FileName: "IMG_JohnSmith.jpg", MIME: "image/jpeg", Caption: "a file"})
	var got *event.MessageEventContent
	for got == nil {
		for _, c := range mia.files() {
			if c.FileName == "file.jpg" || c.Body == "file.jpg" {
				got = c
			}
		}
		if got == nil {
			select {
			case <-ctx.Done():
				t.Fatalf("mia never got the file; got %d media messages", len(mia.files()))
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if got.File == nil || got.URL != "" {
		t.Errorf("mia's file: encrypted %v, plain url %q; want an encrypted attachment only", got.File != nil, got.URL)
	}
	plain, err := mia.u.Download(ctx, got)
	if err != nil || !bytes.Equal(plain, cleanJPEG) {
		t.Errorf("mia decrypts %d bytes (%v), want the %d of the JPEG without metadata", len(plain), err, len(cleanJPEG))
	}
	if _, err := exif.SearchAndExtractExif(plain); !errors.Is(err, exif.ErrNoExif) {
		t.Error("mia's file has EXIF")
	}

	png := bridgetest.PNGWithMetadata(t)
	cleanPNG, _, err := bridge.StripMetadata(png)
	if err != nil {
		t.Fatal(err)
	}
	mia.sendFile(t, ctx, event.MsgImage, "Screenshot John Smith.png", "image/png", png)
	m := photoTo(t, ctx, tg, tess, cleanPNG)
	if !bytes.Contains([]byte(m.Text), []byte(nicks[mia])) {
		t.Errorf("tess's photo caption %q, want it from %s", m.Text, nicks[mia])
	}
}

// photoTo waits for the first photo.png that u's Telegram chat was sent, checks that its bytes are
// want (the PNG without its chunks), and returns it.
func photoTo(t *testing.T, ctx context.Context, tg *telegramtest.Server, u *tgPerson, want []byte) telegramtest.Sent {
	t.Helper()
	for n := 1; ; n++ {
		sent, err := tg.WaitSent(ctx, u.u.ID, n)
		if err != nil {
			t.Fatalf("%s never got the photo: %v", u.u.FirstName, err)
		}
		if m := sent[n-1]; m.Method == "sendPhoto" && m.FileName == "photo.png" {
			if !bytes.Equal(m.FileData, want) {
				t.Errorf("%s's photo is %d bytes, want the %d of the PNG without its chunks", u.u.FirstName, len(m.FileData), len(want))
			}
			return m
		}
	}
}
