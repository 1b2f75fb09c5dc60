package matrix

import (
	"bytes"
	"context"
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
			rec := newRecorder()
			b := startBot(t, ctx, rec)
			alice := login(t, ctx, "alice")
			room := openDM(t, ctx, alice, b, tc.encrypted)
			me := bridge.Addr{Platform: Name, User: alice.ID.String(), Chat: room.String()}
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
			in := rec.wait(t, ctx, 0)
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
		})
	}
}
