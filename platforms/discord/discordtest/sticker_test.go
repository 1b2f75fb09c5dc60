package discordtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// identified connects to the gateway as the bot with the DM intent and reads READY, so that what
// the test makes happen next is dispatched to it.
func identified(t *testing.T, s *Server) func() frame {
	t.Helper()
	ws := dial(t, s)
	t.Cleanup(func() { _ = ws.Close() })
	if err := ws.WriteJSON(map[string]any{"op": opIdentify, "d": map[string]any{"token": "Bot " + s.Token(), "intents": IntentDirectMessages}}); err != nil {
		t.Fatal(err)
	}
	next := func() frame {
		t.Helper()
		var f frame
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := next(); f.T == nil || *f.T != "READY" {
		t.Fatalf("first dispatch %+v, want READY", f)
	}
	return next
}

// TestStickerInDM pins down a sticker message as Discord sends it: MESSAGE_CREATE with
// sticker_items (id, name, format_type, and nothing of the image), the text beside it as content,
// and no sticker_items key on a message without stickers.
func TestStickerInDM(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	next := identified(t, s)
	u := s.AddUser("u")
	png := s.AddSticker("wave", StickerPNG, []byte("\x89PNG"))
	lottie := s.AddSticker("party", StickerLottie, []byte(`{"v":"5.5.2"}`))

	id := s.SendDMSticker(u.ID, "hi", png, lottie)
	f := next()
	if f.T == nil || *f.T != "MESSAGE_CREATE" {
		t.Fatalf("dispatch %+v, want MESSAGE_CREATE", f)
	}
	var m map[string]any
	if err := json.Unmarshal(f.D, &m); err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"id": png.ID, "name": "wave", "format_type": float64(StickerPNG)},
		map[string]any{"id": lottie.ID, "name": "party", "format_type": float64(StickerLottie)},
	}
	if m["id"] != id || m["content"] != "hi" || m["channel_id"] != s.DMChannel(u.ID) || !reflect.DeepEqual(m["sticker_items"], want) {
		t.Errorf("MESSAGE_CREATE = %v, want sticker_items %v", m, want)
	}
	if got := s.Shown(s.DMChannel(u.ID)); len(got) != 1 || len(got[0].Stickers) != 2 || got[0].Stickers[0].ID != png.ID {
		t.Errorf("the DM shows %+v, want the message with its two stickers", got)
	}

	s.SendDM(u.ID, "plain")
	var plain map[string]any
	if err := json.Unmarshal(next().D, &plain); err != nil {
		t.Fatal(err)
	}
	if _, ok := plain["sticker_items"]; ok || plain["content"] != "plain" {
		t.Errorf("a message without stickers: %v", plain)
	}
}

// TestStickerCDN: the CDN serves a known sticker at /stickers/{id} with its format's extension
// (.png for PNG and APNG, .gif for GIF, .json for Lottie) and its type; an unknown sticker, or a
// known one under another extension, is 404.
func TestStickerCDN(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	png := s.AddSticker("a", StickerPNG, []byte("png bytes"))
	apng := s.AddSticker("b", StickerAPNG, []byte("apng bytes"))
	gif := s.AddSticker("c", StickerGIF, []byte("GIF89a bytes"))
	lottie := s.AddSticker("d", StickerLottie, []byte(`{"v":"5.5.2"}`))
	tests := []struct {
		name, path string
		status     int
		ctype      string
		body       []byte
	}{
		{"png", "/stickers/" + png.ID + ".png", http.StatusOK, "image/png", png.Data},
		{"apng", "/stickers/" + apng.ID + ".png", http.StatusOK, "image/png", apng.Data},
		{"gif", "/stickers/" + gif.ID + ".gif", http.StatusOK, "image/gif", gif.Data},
		{"lottie", "/stickers/" + lottie.ID + ".json", http.StatusOK, "application/json", lottie.Data},
		{"unknown sticker", "/stickers/42.png", http.StatusNotFound, "", nil},
		{"png as gif", "/stickers/" + png.ID + ".gif", http.StatusNotFound, "", nil},
		{"lottie as png", "/stickers/" + lottie.ID + ".png", http.StatusNotFound, "", nil},
		{"no extension", "/stickers/" + png.ID, http.StatusNotFound, "", nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(s.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusOK && (resp.Header.Get("Content-Type") != tc.ctype || !bytes.Equal(body, tc.body)) {
				t.Errorf("served %q as %q, want %q as %q", body, resp.Header.Get("Content-Type"), tc.body, tc.ctype)
			}
			if got := s.Downloads(); got != i+1 {
				t.Errorf("%d downloads counted, want %d", got, i+1)
			}
		})
	}
}
