package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// started runs kumo on yaml (written to a file) and environ, and returns the first stdout line once
// kumo printed it, the URL it serves on, and its run.
func started(t *testing.T, yaml string, environ map[string]string) (first, base string, r *bridgetest.Running) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kumo.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	r = bridgetest.Background(t, "kumo", func(ctx context.Context) error {
		defer outW.Close()
		return run(ctx, []string{path}, outW, io.Discard, env(environ))
	})
	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		<-r.Done()
		t.Fatalf("kumo printed nothing; run: %v", r.Err())
	}
	first = lines.Text()
	go func() {
		for lines.Scan() {
		}
	}()
	base = regexp.MustCompile(`http://[0-9a-z.:]+`).FindString(first)
	return first, base, r
}

func healthz(t *testing.T, base string) health {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d %v", resp.StatusCode, err)
	}
	return h
}

// freePort is a loopback port nothing listens on (yet).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A platform that cannot be reached at start does not stop the others: /healthz says it is down,
// and it connects once it can be reached, without a restart.
func TestUnreachablePlatformIsRetried(t *testing.T) {
	fake := telegramtest.New(t)
	addr := freePort(t) // Telegram's address: nothing answers there at first
	yaml := fmt.Sprintf("telegram:\n  api_url: http://%s\nweb: {enabled: true}\nlightning: {backend: dev}\nhttp: {listen: '127.0.0.1:0'}\n", addr)
	first, base, _ := started(t, yaml, map[string]string{"KUMO_TELEGRAM_TOKEN": fake.Token()})
	if !strings.Contains(first, "kumo is running") || base == "" {
		t.Fatalf("first line: %q", first)
	}
	h := healthz(t, base)
	if h.Status != "degraded" || h.Platforms["telegram"].State != "down" || h.Platforms["telegram"].Error == "" ||
		h.Platforms["telegram"].RetryAt == nil || h.Platforms["web"].State != "up" {
		t.Fatalf("/healthz while Telegram is unreachable: %+v", h)
	}
	if strings.Contains(h.Platforms["telegram"].Error, fake.Token()) {
		t.Fatal("/healthz shows the bot token")
	}
	resp, err := http.Get(base + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the web chat does not run while Telegram is down: %v %v", resp, err)
	}
	resp.Body.Close()

	// Telegram becomes reachable.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	target, _ := url.Parse(fake.URL())
	proxy := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}
	go proxy.Serve(l)
	t.Cleanup(func() { proxy.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fake.WaitCalls(ctx, "setMyCommands", 1); err != nil {
		t.Fatalf("kumo never set up Telegram once it was reachable: %v", err)
	}
	// The adapter reports itself up right after setting its menu.
	for h := healthz(t, base); h.Status != "ok" || h.Platforms["telegram"].State != "up"; h = healthz(t, base) {
		select {
		case <-ctx.Done():
			t.Fatalf("/healthz once Telegram is reachable: %+v", h)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A rejected token is a fatal error that says what to check, before any "kumo is running".
func TestRejectedTokenIsFatal(t *testing.T) {
	tg := telegramtest.New(t)
	dc := discordtest.New(discordtest.Options{})
	t.Cleanup(dc.Close)
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"telegram 401", fmt.Sprintf("telegram:\n  api_url: %s\n", tg.URL()), map[string]string{"KUMO_TELEGRAM_TOKEN": "1:wrong"},
			"telegram: the bot token was refused (the platform rejected kumo's credentials): check telegram.token with @BotFather (/mybots, API Token)"},
		{"discord 401", fmt.Sprintf("discord:\n  api_url: %s\n", dc.URL), map[string]string{"KUMO_DISCORD_TOKEN": "wrong"},
			"discord: the bot token was refused (the platform rejected kumo's credentials): check discord.token in the developer portal (Bot, Reset Token)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kumo.yaml")
			yaml := tc.yaml + "web: {enabled: true}\nlightning: {backend: dev}\nhttp: {listen: '127.0.0.1:0'}\n"
			if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := run(ctx, []string{path}, &stdout, io.Discard, env(tc.env))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("run = %v\nwant it to start with %q", err, tc.want)
			}
			if strings.Contains(stdout.String(), "kumo is running") {
				t.Fatalf("said it was running first:\n%s", stdout.String())
			}
		})
	}
}
