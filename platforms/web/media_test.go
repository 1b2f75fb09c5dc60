package web

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

func get(t testing.TB, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// TestMediaOut: a file the bridge sends is the page's at an address of its own, images inline and
// anything else as a download, until the room ends for the visitor.
func TestMediaOut(t *testing.T) {
	h := start(t, Config{Enabled: true})
	c := h.dial(t, "", 0)
	to := c.addr(h.rec)
	relay := bridge.Message{Kind: bridge.KindRelay, From: "Proud Wolf", Text: "look"}
	tests := []struct {
		md          bridge.Media
		contentType string
		disposition string
	}{
		{bridge.Media{Kind: bridge.MediaPhoto, MIME: "image/png", Name: "photo.png", Data: []byte("\x89PNG fake")}, "image/png", "inline"},
		{bridge.Media{Kind: bridge.MediaFile, MIME: "text/html", Name: "file.html", Data: []byte("<script>alert(1)</script>")}, "application/octet-stream", `attachment; filename=file.html`},
	}
	var urls []string
	for _, tc := range tests {
		ids, err := h.p.SendMedia(context.Background(), to, tc.md, relay)
		if err != nil || len(ids) != 1 {
			t.Fatalf("SendMedia: %v %v", ids, err)
		}
		ev := c.next()
		if ev.Media == nil || !strings.HasPrefix(ev.Media.URL, "/media/") || ev.From != "Proud Wolf" || ev.Text != "look" {
			t.Fatalf("event %+v, want the relay with its file", ev)
		}
		if ev.Media.Name != tc.md.Name || ev.Media.Size != len(tc.md.Data) {
			t.Errorf("media %+v", ev.Media)
		}
		code, hdr, body := get(t, h.srv.URL+ev.Media.URL)
		if code != 200 || !bytes.Equal(body, tc.md.Data) {
			t.Fatalf("GET %s: %d %q", ev.Media.URL, code, body)
		}
		if hdr.Get("Content-Type") != tc.contentType || hdr.Get("Content-Disposition") != tc.disposition || hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("headers %v", hdr)
		}
		urls = append(urls, ev.Media.URL)
	}
	if code, _, _ := get(t, h.srv.URL+"/media/"+strings.Repeat("A", 32)); code != 404 {
		t.Errorf("a guessed address answered %d", code)
	}
	// The room ends for the visitor: its files are gone.
	if _, err := h.p.SendText(context.Background(), to, bridge.Message{Kind: bridge.KindNotice, Text: "gone", Room: &bridge.RoomState{Closed: true}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		if code, _, _ := get(t, h.srv.URL+u); code != 404 {
			t.Errorf("GET %s after the room ended: %d", u, code)
		}
	}
	if n := h.p.blobs.held(); n != 0 {
		t.Errorf("%d bytes still held", n)
	}
}

// TestMediaIn: a file POSTed with the session's token reaches the bridge as an attachment; without
// it, from another origin, or too big, it is refused.
func TestMediaIn(t *testing.T) {
	h := start(t, Config{Enabled: true})
	c := h.dial(t, "", 0)
	me := c.addr(h.rec)
	post := func(token, origin string, body []byte, hdr map[string]string) int {
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/media", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("X-Kumo-Token", token)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	data := []byte("\xFF\xD8\xFF a jpeg")
	code := post(c.hello.Token, h.srv.URL, data, map[string]string{"Content-Type": "image/jpeg",
		"X-Kumo-Name": url.PathEscape("IMG_John Smith.jpg"), "X-Kumo-Caption": url.PathEscape("my cat"), "X-Kumo-Id": "7"})
	if code != http.StatusNoContent {
		t.Fatalf("upload answered %d", code)
	}
	in := next(t, h.rec)
	if in.From != me || in.Text != "my cat" || in.ID != "o7" || len(in.Attachments) != 1 {
		t.Fatalf("inbound %+v", in)
	}
	a := in.Attachments[0]
	if a.Kind != bridge.MediaPhoto || a.MIME != "image/jpeg" || a.Name != "IMG_John Smith.jpg" || a.Size != int64(len(data)) {
		t.Errorf("attachment %+v", a)
	}
	got, err := a.Fetch(context.Background(), 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Fetch: %q %v", got, err)
	}
	for _, tc := range []struct {
		name, token, origin string
		body                []byte
		want                int
	}{
		{"no token", "", h.srv.URL, data, http.StatusForbidden},
		{"another origin", c.hello.Token, "https://evil.example", data, http.StatusForbidden},
		{"too big", c.hello.Token, h.srv.URL, make([]byte, MaxUpload+1), http.StatusRequestEntityTooLarge},
		{"empty", c.hello.Token, h.srv.URL, nil, http.StatusBadRequest},
	} {
		if code := post(tc.token, tc.origin, tc.body, nil); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	if n := h.rec.Count(); n != 2 {
		t.Errorf("the bridge got %d messages, want the /who and the one upload", n)
	}
}
