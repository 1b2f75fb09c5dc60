package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/web"
)

// webServer serves httpHandler (health and the web chat, no metrics) with timeouts t on 127.0.0.1,
// the web platform running with h as its bridge.
func webServer(t *testing.T, cfg web.Config, tt timeouts, h bridge.Handler) (base string, p *web.Adapter) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	p, err := web.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	bridgetest.Background(t, "web", func(ctx context.Context) error { return p.Run(ctx, h) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(httpHandler(nil, nil, p.Handler()), log, tt)
	bridgetest.Background(t, "http server", func(ctx context.Context) error {
		go func() { <-ctx.Done(); _ = srv.Close() }()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return "http://" + ln.Addr().String(), p
}

type inbox chan bridge.Inbound

func (c inbox) HandleInbound(_ context.Context, in bridge.Inbound) { c <- in }

// closedByServer reports whether the server closes conn (EOF or reset) before the deadline.
func closedByServer(t *testing.T, conn net.Conn, within time.Duration) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

func TestHTTPTimeouts(t *testing.T) {
	short := timeouts{header: 200 * time.Millisecond, read: 300 * time.Millisecond, write: 300 * time.Millisecond, idle: 200 * time.Millisecond}
	base, _ := webServer(t, web.Config{}, short, make(inbox, 10))
	addr := strings.TrimPrefix(base, "http://")

	t.Run("idle keep-alive connection is closed", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		resp.Body.Close()
		if !closedByServer(t, conn, 5*time.Second) {
			t.Error("an idle keep-alive connection was still open after 5 s")
		}
	})
	t.Run("half-sent headers are cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		if !closedByServer(t, conn, 5*time.Second) {
			t.Error("a connection that never finished its headers was still open after 5 s")
		}
	})
}

// The WebSocket is hijacked: the server's read and write timeouts must not end it.
func TestWebSocketOutlivesReadAndWriteTimeouts(t *testing.T) {
	short := timeouts{header: time.Second, read: 100 * time.Millisecond, write: 100 * time.Millisecond, idle: 100 * time.Millisecond}
	in := make(inbox, 10)
	base, p := webServer(t, web.Config{}, short, in)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(map[string]string{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatalf("hello: %v", err)
	}
	time.Sleep(5 * short.read) // well past every server timeout
	if err := conn.WriteJSON(map[string]string{"type": "text", "text": "still here"}); err != nil {
		t.Fatal(err)
	}
	var got bridge.Inbound
	select {
	case got = <-in:
	case <-time.After(5 * time.Second):
		t.Fatal("the text sent after the server's timeouts never arrived")
	}
	if _, err := p.SendText(context.Background(), got.From, bridge.Message{Kind: bridge.KindReply, Text: "pong"}); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := conn.ReadMessage(); err != nil || !strings.Contains(string(msg), "pong") {
		t.Fatalf("reply after the server's timeouts: %q %v", msg, err)
	}
}

// One client tries to open 20,000 WebSockets: the first max_connections_per_ip are served, every
// other one is refused with 1008 and its reason, and /healthz answers all along.
func TestHealthzAnswersDuringAConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 connections")
	}
	const attempts = 20_000
	base, _ := webServer(t, web.Config{}, defaultTimeouts(), make(inbox, 100))
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"

	var next, accepted, refused atomic.Int64
	var mu sync.Mutex
	var kept []*websocket.Conn // the accepted ones stay open, as an attacker's would
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= attempts {
				conn, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				_ = conn.WriteJSON(map[string]string{"type": "hello"})
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, _, err = conn.ReadMessage()
				var ce *websocket.CloseError
				switch {
				case err == nil:
					accepted.Add(1)
					mu.Lock()
					kept = append(kept, conn)
					mu.Unlock()
					continue
				case errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation && strings.Contains(ce.Text, "Too many open chats"):
					refused.Add(1)
				default:
					firstErr.CompareAndSwap(nil, err)
				}
				conn.Close()
			}
		}()
	}
	flood := make(chan struct{})
	go func() { wg.Wait(); close(flood) }()

	// Health is asked on fresh connections (no keep-alive), as a load balancer would.
	health := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	answered := 0
	for done := false; !done; {
		select {
		case <-flood:
			done = true
		default:
		}
		resp, err := health.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("/healthz after %d attempts: %v", next.Load(), err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz: %d", resp.StatusCode)
		}
		if !done {
			answered++
		}
	}
	if err := firstErr.Load(); err != nil {
		t.Fatalf("an attempt failed other than by refusal: %v", err)
	}
	if accepted.Load() != web.DefaultMaxConnectionsPerIP || accepted.Load()+refused.Load() != attempts {
		t.Errorf("accepted %d, refused %d of %d; want %d accepted and the rest refused",
			accepted.Load(), refused.Load(), attempts, web.DefaultMaxConnectionsPerIP)
	}
	if answered == 0 {
		t.Error("/healthz was never asked while the flood ran")
	}
	t.Logf("%d attempts: %d accepted, %d refused; /healthz answered %d times during the flood", attempts, accepted.Load(), refused.Load(), answered)
	for _, c := range kept {
		c.Close()
	}
}

func TestMetricsOnTheirOwnListener(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/kumo.yaml"
	cfg := "web: {enabled: true}\nhttp: {listen: 127.0.0.1:0, metrics_listen: 127.0.0.1:0}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	kumo := bridgetest.Background(t, "kumo", func(ctx context.Context) error {
		defer outW.Close()
		return run(ctx, []string{"-config", path}, outW, io.Discard, env(nil))
	})
	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		t.Fatal("kumo printed nothing")
	}
	urls := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindAllString(lines.Text(), -1)
	if len(urls) != 2 || urls[0] == urls[1] {
		t.Fatalf("first line %q: want the main and the metrics address", lines.Text())
	}
	go io.Copy(io.Discard, outR)
	main, metrics := urls[0], urls[1]
	for _, tt := range []struct {
		url  string
		want int
	}{
		{main + "/healthz", 200},
		{main + "/metrics", 404},
		{metrics + "/metrics", 200},
		{metrics + "/", 404},
	} {
		resp, err := http.Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s: %d, want %d", tt.url, resp.StatusCode, tt.want)
		}
	}
	kumo.Stop()
}
