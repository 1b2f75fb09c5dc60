package matrix

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// TestMedia: in an encrypted DM and a plain one, a photo a member sends (an encrypted attachment
// where the room is encrypted) reaches the bridge with its caption and decrypts to the bytes sent;
// a file the bridge sends arrives after its sender's pseudonym, encrypted with its own key where
// the room is, and downloads (and decrypts) to the bytes sent.
func TestMedia(t *testing.T) {
	for _, tc := range []struct {
		name      string
		encrypted bool
	}{{"encrypted", true}, {"unencrypted", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			rec, b, alice, room, me := aliceDM(t, ctx, tc.encrypted)
			photo := bridgetest.JPEGWithMetadata(t)

			// In: alice sends a photo with a caption.
			content := &event.MessageEventContent{MsgType: event.MsgImage, Body: "my garden", FileName: "IMG_JohnSmith.jpg",
				Info: &event.FileInfo{MimeType: "image/jpeg", Size: len(photo)}}
			data, mime := append([]byte(nil), photo...), "image/jpeg"
			var file *attachment.EncryptedFile
			if tc.encrypted {
				file = attachment.NewEncryptedFile()
				file.EncryptInPlace(data)
				mime = "application/octet-stream"
			}
			up, err := alice.Client.UploadBytes(ctx, data, mime)
			if err != nil {
				t.Fatal(err)
			}
			if file != nil {
				content.File = &event.EncryptedFileInfo{EncryptedFile: *file, URL: up.ContentURI.CUString()}
			} else {
				content.URL = up.ContentURI.CUString()
			}
			if _, err := alice.Client.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
				t.Fatal(err)
			}
			in := rec.Wait(t, ctx, 1)[0]
			if in.Text != "my garden" || len(in.Attachments) != 1 {
				t.Fatalf("inbound %+v, want the photo with its caption", in)
			}
			at := in.Attachments[0]
			if at.Kind != bridge.MediaPhoto || at.Name != "IMG_JohnSmith.jpg" || at.MIME != "image/jpeg" || at.Size != int64(len(photo)) {
				t.Errorf("attachment %+v", at)
			}
			got, err := at.Fetch(ctx, 20<<20)
			if err != nil || !bytes.Equal(got, photo) {
				t.Fatalf("Fetch: %d bytes, %v; want the %d bytes alice sent", len(got), err, len(photo))
			}
			if _, err := at.Fetch(ctx, int64(len(photo))-1); err == nil {
				t.Error("Fetch over its limit did not fail")
			}

			// Out: the bridge sends alice a photo.
			stripped, _, err := bridge.StripMetadata(photo)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := b.a.SendMedia(ctx, me, bridge.Media{Kind: bridge.MediaPhoto, MIME: "image/jpeg", Name: "photo.jpg", Data: stripped},
				bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "look"})
			if err != nil || len(ids) != 2 {
				t.Fatalf("SendMedia: %v %v", ids, err)
			}
			message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return c.Body == "Blue Fox: look" })
			img := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool {
				return c.MsgType == event.MsgImage && c.FileName == "photo.jpg"
			})
			if tc.encrypted != (img.File != nil) || tc.encrypted == (img.URL != "") {
				t.Errorf("encrypted room %v: the image has file %v, url %q", tc.encrypted, img.File != nil, img.URL)
			}
			down, err := alice.Download(ctx, img)
			if err != nil || !bytes.Equal(down, stripped) {
				t.Errorf("alice downloads %d bytes (%v), want the %d sent", len(down), err, len(stripped))
			}
			if n := alice.DecryptFailures(); n != 0 {
				t.Errorf("alice could not decrypt %d events", n)
			}

			// A file over the homeserver's max_file_size_bytes (10 MiB here) is refused as too big
			// and leaves nothing in the chat: no pseudonym line without its file.
			ids, err = b.a.SendMedia(ctx, me, bridge.Media{Kind: bridge.MediaFile, MIME: "application/octet-stream", Name: "file.bin", Data: make([]byte, 11<<20)},
				bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "too big"})
			if !errors.Is(err, bridge.ErrTooBig) || len(ids) != 0 {
				t.Fatalf("SendMedia of 11 MiB = %v, %v; want no ids and ErrTooBig", ids, err)
			}
			if _, err := b.a.SendText(ctx, me, bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "after"}); err != nil {
				t.Fatal(err)
			}
			message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return c.Body == "Blue Fox: after" })
			for _, e := range alice.Messages(room, b.id) {
				if c := e.Content.AsMessage(); strings.Contains(c.Body, "too big") || c.FileName == "file.bin" {
					t.Errorf("the refused file left %q in the chat", c.Body)
				}
			}
		})
	}
}

// TestMediaThroughCore: through the core, a photo with EXIF GPS that a Matrix member sends in an
// encrypted DM reaches a member elsewhere without its EXIF, and a file from there reaches the
// Matrix member as an encrypted attachment they can decrypt.
func TestMediaThroughCore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := bridge.DefaultConfig()
	cfg.PriceSat, cfg.FloodRate = 0, 0
	b := newBot(t, ctx, hs.URL)
	other := bridgetest.NewMedia("other", bridge.Limits{MaxText: 4096}, 50<<20)
	br, err := bridge.New(cfg, nil, nil, b.a, other)
	if err != nil {
		t.Fatal(err)
	}
	// Stopped at cleanup, with a deadline.
	b.waitReady(t, ctx, bridgetest.Background(t, "bridge", br.Run))
	alice := login(t, ctx, "alice")
	dm := openDM(t, ctx, alice, b, true)
	if err := alice.SendText(ctx, dm, "!newroom"); err != nil {
		t.Fatal(err)
	}
	opened := message(t, ctx, alice, dm, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "room is open") })
	password := opened.Body[strings.LastIndex(opened.Body, "\n")+1:]
	olly := other.User("olly")
	other.Say(t, olly, password)
	other.WaitText(t, olly.Chat, "You joined the room")

	photo := bridgetest.JPEGWithMetadata(t)
	stripped, _, err := bridge.StripMetadata(photo)
	if err != nil {
		t.Fatal(err)
	}
	file := attachment.NewEncryptedFile()
	data := append([]byte(nil), photo...)
	file.EncryptInPlace(data)
	up, err := alice.Client.UploadBytes(ctx, data, "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Client.SendMessageEvent(ctx, dm, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgImage, Body: "IMG_JohnSmith.jpg", Info: &event.FileInfo{MimeType: "image/jpeg", Size: len(photo)},
		File: &event.EncryptedFileInfo{EncryptedFile: *file, URL: up.ContentURI.CUString()},
	}); err != nil {
		t.Fatal(err)
	}
	other.WaitFor(t, olly.Chat, time.Minute, "the photo", func([]bridge.Message) bool { return len(other.Media(olly.Chat)) == 1 })
	if got := other.Media(olly.Chat)[0]; got.Sum != sha256.Sum256(stripped) || got.Name != "photo.jpg" {
		t.Errorf("olly got %q (%d bytes), want photo.jpg: the photo without its metadata (%d bytes)", got.Name, got.Len, len(stripped))
	}

	doc := []byte("%PDF-1.4 a report")
	other.SayMedia(t, olly, "the report", bridgetest.File(bridge.MediaFile, "Report of Olly.pdf", "application/pdf", doc, nil))
	got := message(t, ctx, alice, dm, b.id, func(c *event.MessageEventContent) bool { return c.MsgType == event.MsgFile })
	if got.File == nil || got.URL != "" || got.FileName != "file.pdf" {
		t.Errorf("alice's file: encrypted %v, url %q, name %q; want an encrypted file.pdf", got.File != nil, got.URL, got.FileName)
	}
	plain, err := alice.Download(ctx, got)
	if err != nil || !bytes.Equal(plain, doc) {
		t.Errorf("alice decrypts %q (%v), want %q", plain, err, doc)
	}
}
