package telegram_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	exif "github.com/dsoprea/go-exif/v3"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// TestCoreRelaysEveryMediaKind: every kind a member sends reaches the other member, under the
// sender's pseudonym, as Telegram's own copy where that carries no metadata and otherwise as an
// upload of the bytes with their metadata stripped and a neutral name.
func TestCoreRelaysEveryMediaKind(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	bob := telegramtest.User{ID: 1002, FirstName: "Bob"}
	w.openRoom(t, alice, bob)
	nick := w.nick(t, alice)
	jpegGPS := bridgetest.JPEGWithMetadata(t)
	stripped, _, err := bridge.StripMetadata(jpegGPS)
	if err != nil {
		t.Fatal(err)
	}
	opaque := bytes.Repeat([]byte("kumo"), 1000)

	tests := []struct {
		media, name, mime string
		file              []byte
		caption           string
		method            string // how bob gets it
		want              []byte
		wantName          string
	}{
		{"photo", "", "", jpegGPS, "a photo", "copyMessage", jpegGPS, ""},
		{"voice", "", "audio/ogg", opaque, "", "copyMessage", opaque, ""},
		{"sticker", "", "", opaque, "", "copyMessage", opaque, ""},
		{"document", "IMG_JohnSmith.jpg", "image/jpeg", jpegGPS, "as a file", "sendDocument", stripped, "file.jpg"},
		{"document", "Report of John Smith.pdf", "application/pdf", opaque, "a pdf", "sendDocument", opaque, "file.pdf"},
		{"audio", "John - demo.mp3", "audio/mpeg", opaque, "", "sendAudio", opaque, "audio.mp3"},
		{"video", "VID_0001.mp4", "video/mp4", opaque, "a video", "sendVideo", opaque, "video.mp4"},
		{"animation", "funny.mp4", "video/mp4", opaque, "", "sendAnimation", opaque, "animation.mp4"},
		{"video_note", "", "", opaque, "", "sendVideoNote", opaque, "video.mp4"},
	}
	for _, tc := range tests {
		t.Run(tc.media+" "+tc.name, func(t *testing.T) {
			before := len(w.s.Sent(bob.ID))
			w.s.Inject(telegramtest.Incoming{From: alice, Media: tc.media, File: tc.file, FileName: tc.name, MIME: tc.mime, Caption: tc.caption})
			var got telegramtest.Sent
			for n := before + 1; got.Method == ""; n++ {
				sent, err := w.s.WaitSent(w.ctx, bob.ID, n)
				if err != nil {
					t.Fatal(err)
				}
				if m := sent[n-1]; m.Method != "sendMessage" {
					got = m
				} else if tc.media != "sticker" && tc.media != "video_note" {
					t.Fatalf("bob got a text before the %s: %q", tc.media, m.Text)
				} else if m.Text != nick+": "+tc.caption {
					t.Fatalf("bob got %q before the %s, want its sender's name", m.Text, tc.media)
				}
			}
			if got.Method != tc.method {
				t.Fatalf("bob got a %s, want %s", got.Method, tc.method)
			}
			if !bytes.Equal(got.FileData, tc.want) {
				t.Errorf("bob's %s bytes differ from what was expected (%d bytes, want %d)", tc.media, len(got.FileData), len(tc.want))
			}
			if tc.wantName != "" && got.FileName != tc.wantName {
				t.Errorf("file name %q, want %q", got.FileName, tc.wantName)
			}
			if tc.media != "sticker" && tc.media != "video_note" && got.Text != nick+": "+tc.caption {
				t.Errorf("caption %q, want %q", got.Text, nick+": "+tc.caption)
			}
			if !got.Protected {
				t.Error("sent without protect_content")
			}
			if tc.method != "copyMessage" {
				if _, err := exif.SearchAndExtractExif(got.FileData); !errors.Is(err, exif.ErrNoExif) {
					t.Error("what bob got has EXIF")
				}
			}
		})
	}
}

// TestCoreOversizedMedia: a file over what a bot may download is refused before anything is
// fetched, and only its sender hears of it.
func TestCoreOversizedMedia(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	bob := telegramtest.User{ID: 1002, FirstName: "Bob"}
	w.openRoom(t, alice, bob)
	nick := w.nick(t, alice)
	n := len(w.s.Sent(alice.ID))
	w.s.Inject(telegramtest.Incoming{From: alice, Media: "document", File: make([]byte, 21<<20), FileName: "big.zip", Caption: "big"})
	w.waitText(t, alice, n, "Your file (21.0 MB) is too big to relay: the limit is 20.0 MB. Nobody got it.")
	w.say(alice, "after it")
	w.waitText(t, bob, 0, nick+": after it")
	for _, m := range w.s.Sent(bob.ID) {
		if m.Method != "sendMessage" || bytes.Contains([]byte(m.Text), []byte("big")) {
			t.Errorf("bob got %s %q", m.Method, m.Text)
		}
	}
	if c := w.s.Stats().Calls["file"]; c != 0 {
		t.Errorf("the file was downloaded %d times", c)
	}
}

// TestSendMediaLimits: Telegram's own upload limits come back as ErrTooBig.
func TestSendMediaLimits(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	w.openRoom(t, alice)
	to := bridge.Addr{Platform: "telegram", User: "1001", Chat: "1001"}
	tests := []struct {
		kind bridge.MediaKind
		size int
	}{
		{bridge.MediaPhoto, 10<<20 + 1}, // "Bad Request: file is too big"
		{bridge.MediaFile, 50<<20 + 1},  // 413 "Request Entity Too Large"
	}
	for _, tc := range tests {
		_, err := w.a.SendMedia(context.Background(), to, bridge.Media{Kind: tc.kind, Name: "x", Data: make([]byte, tc.size)}, bridge.Message{Kind: bridge.KindRelay, From: "x"})
		if !errors.Is(err, bridge.ErrTooBig) || !errors.Is(err, bridge.ErrRejected) {
			t.Errorf("%s of %d bytes: err = %v, want ErrTooBig and ErrRejected", tc.kind, tc.size, err)
		}
	}
}

// TestInboundAttachments: what the adapter makes of each medium: kind, name and type, whether it
// may be copied within Telegram, and bytes fetched through getFile; an animated sticker goes to
// other platforms as its still preview.
func TestInboundAttachments(t *testing.T) {
	s := telegramtest.New(t)
	rec := &bridgetest.Inbox{}
	run(t, newAdapter(t, s), rec)
	ctx := deadline(t)
	alice := telegramtest.User{ID: 501, FirstName: "Alice"}
	tests := []struct {
		in         telegramtest.Incoming
		kind       bridge.MediaKind
		name, mime string
		native     bool
		bytes      []byte
	}{
		{telegramtest.Incoming{Media: "photo", File: []byte("jpeg")}, bridge.MediaPhoto, "photo.jpg", "image/jpeg", true, []byte("jpeg")},
		{telegramtest.Incoming{Media: "voice", File: []byte("ogg"), MIME: "audio/ogg"}, bridge.MediaVoice, "voice.ogg", "audio/ogg", true, []byte("ogg")},
		{telegramtest.Incoming{Media: "sticker", File: []byte("webp")}, bridge.MediaSticker, "sticker.webp", "image/webp", true, []byte("webp")},
		{telegramtest.Incoming{Media: "sticker", File: []byte("lottie"), Thumbnail: []byte("preview")}, bridge.MediaSticker, "sticker.webp", "image/webp", true, []byte("preview")},
		{telegramtest.Incoming{Media: "document", File: []byte("%PDF"), FileName: "John.pdf", MIME: "application/pdf"}, bridge.MediaFile, "John.pdf", "application/pdf", false, []byte("%PDF")},
		{telegramtest.Incoming{Media: "animation", File: []byte("mp4"), FileName: "a.mp4", MIME: "video/mp4"}, bridge.MediaAnimation, "a.mp4", "video/mp4", false, []byte("mp4")},
		{telegramtest.Incoming{Media: "video_note", File: []byte("mp4")}, bridge.MediaVideoNote, "video.mp4", "video/mp4", false, []byte("mp4")},
	}
	for i, tc := range tests {
		tc.in.From = alice
		s.Inject(tc.in)
		got := rec.Wait(t, ctx, i+1)[i]
		if len(got.Attachments) != 1 {
			t.Fatalf("%s: %+v", tc.in.Media, got)
		}
		a := got.Attachments[0]
		if a.Kind != tc.kind || a.Name != tc.name || a.MIME != tc.mime || (a.Native != "") != tc.native || a.MaxFetch != 20<<20 {
			t.Errorf("%s: %+v", tc.in.Media, a)
		}
		data, err := a.Fetch(ctx, 1<<20)
		if err != nil || !bytes.Equal(data, tc.bytes) {
			t.Errorf("%s: Fetch = %q, %v; want %q", tc.in.Media, data, err, tc.bytes)
		}
		if _, err := a.Fetch(ctx, int64(len(tc.bytes))-1); !errors.Is(err, bridge.ErrTooBig) {
			t.Errorf("%s: Fetch under the file's size: %v, want ErrTooBig", tc.in.Media, err)
		}
	}
}

// TestSendSticker: a WEBP sticker goes out as a sticker after its sender's name; another
// platform's PNG sticker (which sendSticker refuses) as a photo.
func TestSendSticker(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	w.openRoom(t, alice)
	to := bridge.Addr{Platform: "telegram", User: "1001", Chat: "1001"}
	tests := []struct {
		mime   string
		data   []byte
		method string
	}{
		{"image/webp", bridgetest.WebPWithMetadata(t), "sendSticker"},
		{"image/png", bridgetest.PNGWithMetadata(t), "sendPhoto"},
	}
	for _, tc := range tests {
		ids, err := w.a.SendMedia(context.Background(), to, bridge.Media{Kind: bridge.MediaSticker, MIME: tc.mime, Name: "sticker", Data: tc.data},
			bridge.Message{Kind: bridge.KindRelay, From: "Proud Wolf"})
		if err != nil {
			t.Fatalf("%s: %v", tc.mime, err)
		}
		// What these ids are (the room's own messages may still be arriving around them).
		var methods []string
		for _, m := range w.s.Sent(alice.ID) {
			if slices.Contains(ids, bridge.MessageID(strconv.Itoa(m.MessageID))) {
				methods = append(methods, m.Method)
			}
		}
		if len(methods) != len(ids) || len(methods) == 0 || methods[len(methods)-1] != tc.method {
			t.Errorf("%s: ids %v are %v, want the last by %s", tc.mime, ids, methods, tc.method)
		}
	}
}
