package web

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

// BenchmarkMediaUpload sends a 4 MiB file through the adapter to a visitor and has the visitor's
// page fetch it from the address it is offered (GET /media/<id>): what a recipient gets, per second.
// The files stay held for the page (within the adapter's budget for them, 256 MiB).
//
//	go test -tags goolm -run '^$' -bench MediaUpload -benchtime 20x ./platforms/web/
func BenchmarkMediaUpload(b *testing.B) {
	h := start(b, Config{Enabled: true})
	c := h.dial(b, "", 0)
	to := c.addr(h.rec)
	data := bytes.Repeat([]byte("kumo"), 1<<20)
	md := bridge.Media{Kind: bridge.MediaFile, Name: "file.bin", Data: data}
	relay := bridge.Message{Kind: bridge.KindRelay, From: "Proud Wolf"}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := h.p.SendMedia(context.Background(), to, md, relay); err != nil {
			b.Fatal(err)
		}
		ev := c.next()
		if ev.Media == nil {
			b.Fatalf("event %+v, want the file", ev)
		}
		if code, _, body := get(b, h.srv.URL+ev.Media.URL); code != http.StatusOK || len(body) != len(data) {
			b.Fatalf("GET %s: %d, %d bytes", ev.Media.URL, code, len(body))
		}
	}
}
