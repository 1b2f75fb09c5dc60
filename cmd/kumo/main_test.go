package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// With no configuration kumo starts on its defaults, says what to open and what to do next, serves
// health, metrics and the web chat, and stops cleanly when told to.
func TestRunWithoutConfig(t *testing.T) {
	t.Chdir(t.TempDir()) // no config.yaml here
	outR, outW := io.Pipe()
	kumo := bridgetest.Background(t, "kumo", func(ctx context.Context) error {
		defer outW.Close()
		return run(ctx, nil, outW, io.Discard, env(map[string]string{"KUMO_HTTP_LISTEN": "127.0.0.1:0"}))
	})
	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		t.Fatal("kumo printed nothing")
	}
	first := lines.Text()
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(first)
	if url == "" || !strings.Contains(first, "development payments") {
		t.Fatalf("first line: %q", first)
	}
	if !lines.Scan() || !strings.Contains(lines.Text(), "config.example.yaml") {
		t.Fatalf("second line should say how to connect messengers: %q", lines.Text())
	}
	go io.Copy(io.Discard, outR)
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "kumo_rooms_open 0", "/": "<html"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(body)), strings.ToLower(want)) {
			t.Fatalf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	kumo.Stop()
}

func TestRunRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/bad.yaml"
	if err := os.WriteFile(path, []byte("rooms:\n  colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"-config", path}, io.Discard, io.Discard, env(nil))
	if err == nil || !strings.Contains(err.Error(), `unknown key "rooms.colour"`) {
		t.Fatalf("got %v", err)
	}
	err = run(context.Background(), []string{"-config", dir + "/missing.yaml"}, io.Discard, io.Discard, env(nil))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("a missing explicit config should fail, got %v", err)
	}
}
