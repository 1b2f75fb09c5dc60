package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestClientOrigin(t *testing.T) {
	proxies, err := ParseTrustedProxies([]string{"10.0.0.1", "192.168.0.0/16", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		peer    string
		xff     []string // one entry per X-Forwarded-For header
		proxies []netip.Prefix
		want    string
	}{
		{"direct IPv4", "203.0.113.7:5555", nil, nil, "ip:203.0.113.7"},
		{"direct IPv6 grouped by /64", "[2001:db8:1:2:aaaa::1]:5555", nil, nil, "ip:2001:db8:1:2::/64"},
		{"another address in the same /64", "[2001:db8:1:2:ffff:1:2:3]:80", nil, nil, "ip:2001:db8:1:2::/64"},
		{"next /64 is another origin", "[2001:db8:1:3::1]:80", nil, nil, "ip:2001:db8:1:3::/64"},
		{"IPv4-mapped IPv6 is IPv4", "[::ffff:203.0.113.7]:80", nil, nil, "ip:203.0.113.7"},
		{"spoofed XFF from an untrusted peer is ignored", "203.0.113.7:1", []string{"198.51.100.1"}, proxies, "ip:203.0.113.7"},
		{"spoofed XFF with no trusted proxies configured", "10.0.0.1:1", []string{"198.51.100.1"}, nil, "ip:10.0.0.1"},
		{"one trusted proxy", "10.0.0.1:1", []string{"198.51.100.1"}, proxies, "ip:198.51.100.1"},
		{"client-written hops left of the real client are ignored", "10.0.0.1:1", []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, proxies, "ip:198.51.100.1"},
		{"chain through trusted proxies", "10.0.0.1:1", []string{"6.6.6.6, 198.51.100.1, 192.168.4.4"}, proxies, "ip:198.51.100.1"},
		{"chain split over several headers", "10.0.0.1:1", []string{"6.6.6.6, 198.51.100.1", "192.168.4.4"}, proxies, "ip:198.51.100.1"},
		{"IPv6 client through a trusted proxy", "[fd00::1]:1", []string{"2001:db8:9:9::5"}, proxies, "ip:2001:db8:9:9::/64"},
		{"hop with a port", "10.0.0.1:1", []string{"198.51.100.1:4444"}, proxies, "ip:198.51.100.1"},
		{"bracketed IPv6 hop", "10.0.0.1:1", []string{"[2001:db8::1]"}, proxies, "ip:2001:db8::/64"},
		{"garbage hop stops at the last trusted one", "10.0.0.1:1", []string{"198.51.100.1, garbage, 192.168.1.1"}, proxies, "ip:192.168.1.1"},
		{"only trusted hops: the leftmost", "10.0.0.1:1", []string{"192.168.1.1, 192.168.1.2"}, proxies, "ip:192.168.1.1"},
		{"trusted peer without XFF", "10.0.0.1:1", nil, proxies, "ip:10.0.0.1"},
		{"unparseable peer", "pipe", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := originOf(clientIP(r, tt.proxies)); got != tt.want {
				t.Errorf("origin = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.org", ""} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	got, err := ParseTrustedProxies([]string{"10.1.2.3/8", "::ffff:10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.0.0.1/32")}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // "" when valid
	}{
		{Config{}, ""},
		{Config{MaxConnectionsPerIP: 5, MaxConnections: 50, PublicURL: "https://chat.example.org"}, ""},
		{Config{MaxConnectionsPerIP: -1}, "web.max_connections_per_ip"},
		{Config{MaxConnections: -1}, "web.max_connections"},
		{Config{PublicURL: "chat.example.org"}, "web.public_url"},
		{Config{Origins: []string{"ftp://x"}}, "web.origins"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" && err != nil {
			t.Errorf("%+v: %v", tt.cfg, err)
		}
		if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: error %v, want one naming %s", tt.cfg, err, tt.want)
		}
	}
}

// refusedWith dials and expects the connection to be closed at once with code, giving its reason.
func refusedWith(t *testing.T, url string, hdr http.Header, code int) string {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("read: %v, want close code %d", err, code)
	}
	return ce.Text
}

func TestConnectionCaps(t *testing.T) {
	h := start(t, Config{MaxConnectionsPerIP: 3, MaxConnections: 5})
	var open []*client
	for range 3 {
		open = append(open, h.dial(t, "", 0))
	}
	// The fourth from the same address is refused with a reason the page shows.
	reason := refusedWith(t, h.wsURL(), nil, websocket.ClosePolicyViolation)
	if !strings.Contains(reason, "Too many open chats from your network (limit 3)") {
		t.Errorf("per-IP refusal reason %q", reason)
	}
	// The ones already open are unaffected.
	open[0].send(inbound{Type: "text", Text: "still here"})
	if in := next(t, h.rec); in.Text != "still here" || in.Origin != "ip:127.0.0.1" {
		t.Errorf("inbound %+v, want the text from origin ip:127.0.0.1", in)
	}
	// Closing one frees its slot.
	open[0].conn.Close()
	waitOpen(t, h.p, 2)
	open[0] = h.dial(t, "", 0)

	// The global cap counts every address: fill it from a second one through a trusted proxy.
	h2 := start(t, Config{MaxConnectionsPerIP: 3, MaxConnections: 5},
		WithTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}))
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	for _, ip := range []string{"198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"} {
		c, _, err := websocket.DefaultDialer.Dial(h2.wsURL(), from(ip))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.WriteJSON(inbound{Type: "hello"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("hello from %s: %v", ip, err)
		}
		// What the bridge counts by: the address the trusted proxy saw, not the proxy's.
		if err := c.WriteJSON(inbound{Type: "text", Text: "/join guess"}); err != nil {
			t.Fatal(err)
		}
		if in := next(t, h2.rec); in.Origin != "ip:"+ip {
			t.Errorf("Origin %q through the proxy, want ip:%s", in.Origin, ip)
		}
	}
	reason = refusedWith(t, h2.wsURL(), from("198.51.100.9"), websocket.CloseTryAgainLater)
	if !strings.Contains(reason, "kumo is full") {
		t.Errorf("global refusal reason %q", reason)
	}
	if len(reason) > 123 {
		t.Errorf("close reason is %d bytes; a close frame holds 123", len(reason))
	}
}

func waitOpen(t *testing.T, p *Adapter, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.limit.open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections hold a slot, want %d", p.limit.open(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A client that floods pings is closed with 1008; one that pings like a browser stays.
func TestControlFrameFlood(t *testing.T) {
	h := start(t, Config{})
	c := h.dial(t, "", 0)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = c.conn.WriteControl(websocket.PingMessage, []byte("x"), time.Now().Add(time.Second))
	}
	if code := c.closeCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("close code %d after a ping flood, want 1008", code)
	}
	waitOpen(t, h.p, 0)

	calm := h.dial(t, "", 0)
	pongs := make(chan struct{}, 10)
	calm.conn.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
	go func() { _, _, _ = calm.conn.ReadMessage() }()
	for range 5 {
		if err := calm.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-pongs:
		case <-time.After(5 * time.Second):
			t.Fatal("no pong for a ping within the burst")
		}
	}
}

func TestHostCheck(t *testing.T) {
	p, err := New(Config{PublicURL: "https://chat.example.org"}, slog.New(slog.DiscardHandler),
		WithListenAddr("kumo.lan:8080"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	tests := []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LOCALHOST", true},
		{"app.localhost:8080", true},
		{"kumo.lan:8080", true},
		{"chat.example.org", true},
		{"chat.example.org.", true},
		{"192.0.2.10", true},
		{"evil.example.com", false},
		{"evil.example.com:8080", false},
		{"chat.example.org.evil.example.com", false},
		{"localhost.evil.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			req.Host = tt.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.ok && resp.StatusCode != http.StatusOK {
				t.Errorf("status %d, want 200", resp.StatusCode)
			}
			if !tt.ok && (resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(string(body), "web.public_url")) {
				t.Errorf("status %d %q, want 421 naming web.public_url", resp.StatusCode, body)
			}
		})
	}
}
