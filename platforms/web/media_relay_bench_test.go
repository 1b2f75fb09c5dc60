package web_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

// roomOfTwo opens two visitors' WebSockets on the kumo at base: alice opens a free room and bob
// joins it.
func roomOfTwo(t testing.TB, base string) (alice, bob *wsChat) {
	t.Helper()
	alice, err := openChat(base, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.conn.Close() })
	if err := alice.say("/newroom"); err != nil {
		t.Fatal(err)
	}
	open, err := alice.until(func(ev wsEvent) bool { return strings.Contains(ev.Text, "Your room is open") })
	if err != nil || open.Code == "" {
		t.Fatalf("no room opened: %v %+v", err, open)
	}
	bob, err = openChat(base, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.conn.Close() })
	if err := bob.say(open.Code); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.until(func(ev wsEvent) bool { return strings.Contains(ev.Text, "You joined") }); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// upload sends a file as the page does: POST /media with the session's token, the name in
// X-Kumo-Name.
func (c *wsChat) upload(base, name, mimeType string, data []byte) error {
	req, err := http.NewRequest(http.MethodPost, base+"/media", bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Origin", base)
	req.Header.Set("X-Kumo-Token", c.token)
	req.Header.Set("X-Kumo-Name", name)
	req.Header.Set("Content-Type", mimeType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("upload answered %d", resp.StatusCode)
	}
	return nil
}

// download fetches a file the page was offered, as the page does.
func download(base string, m *wsMedia) ([]byte, error) {
	resp, err := http.Get(base + m.URL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d", m.URL, resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

// BenchmarkMediaRelay moves a 4 MiB file from one visitor to another through the core: alice's
// POST /media, the core's fetch of it and the filter, the file held for bob's page, and bob's GET
// of the address he is offered. It reports the bridge's peak media memory as a multiple of the file.
//
//	go test -tags goolm -run '^$' -bench MediaRelay -benchtime 20x ./platforms/web/
func BenchmarkMediaRelay(b *testing.B) {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	cfg.FloodRate = 0
	k := startKumo(b, cfg)
	alice, bob := roomOfTwo(b, k.url)
	data := bytes.Repeat([]byte("kumo"), 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := alice.upload(k.url, "f.bin", "application/octet-stream", data); err != nil {
			b.Fatal(err)
		}
		ev, err := bob.until(func(ev wsEvent) bool { return ev.Media != nil })
		if err != nil {
			b.Fatal(err)
		}
		got, err := download(k.url, ev.Media)
		if err != nil || len(got) != len(data) {
			b.Fatalf("bob got %d bytes: %v", len(got), err)
		}
	}
	b.ReportMetric(float64(k.b.Stats().MediaPeak)/float64(len(data)), "peak-x-file")
}
