package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// next is the next message the bridge got, within 5 s.
func next(t testing.TB, rec *bridgetest.Inbox) bridge.Inbound {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rec.Next(t, ctx)
}

type harness struct {
	p    *Adapter
	srv  *httptest.Server
	rec  *bridgetest.Inbox
	logs *bridgetest.LogBuffer
	run  *bridgetest.Running
}

func start(t testing.TB, cfg Config, opts ...Option) *harness {
	t.Helper()
	logs := &bridgetest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := New(cfg, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{p: p, rec: &bridgetest.Inbox{}, logs: logs}
	h.srv = httptest.NewServer(p.Handler())
	t.Cleanup(h.srv.Close) // after the run has stopped: cleanups run last first
	h.run = bridgetest.Background(t, "web", func(ctx context.Context) error { return p.Run(ctx, h.rec) })
	// Run has started once a WebSocket is accepted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, _, ok := p.acquire(); ok {
			p.conns.Done()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
		time.Sleep(time.Millisecond)
	}
	return h
}

func (h *harness) stop(t testing.TB) {
	t.Helper()
	h.run.Stop()
}

func (h *harness) wsURL() string { return "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws" }

type client struct {
	t     testing.TB
	conn  *websocket.Conn
	hello event
}

func (h *harness) dial(t testing.TB, resume string, last uint64) *client {
	t.Helper()
	hdr := http.Header{"Origin": {h.srv.URL}}
	conn, resp, err := websocket.DefaultDialer.Dial(h.wsURL(), hdr)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn}
	c.send(inbound{Type: "hello", Resume: resume, Last: last})
	c.hello = c.next()
	if c.hello.Type != "hello" || c.hello.Token == "" {
		t.Fatalf("first event %+v, want a hello with a token", c.hello)
	}
	return c
}

func (c *client) send(in inbound) {
	c.t.Helper()
	if err := c.conn.WriteJSON(in); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) next() event {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ev event
	if err := c.conn.ReadJSON(&ev); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return ev
}

// closeCode reads until the connection closes and returns the close code.
func (c *client) closeCode() int {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var ev event
		err := c.conn.ReadJSON(&ev)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("read: %v, want a close frame", err)
		}
	}
}

// addr says hello from the page and returns the Addr the bridge sees it as.
func (c *client) addr(rec *bridgetest.Inbox) bridge.Addr {
	c.t.Helper()
	c.send(inbound{Type: "text", Text: "/who"})
	return next(c.t, rec).From
}

func TestSecurityHeaders(t *testing.T) {
	h := start(t, Config{Enabled: true})
	tests := []struct {
		path, wantType string
		wantStatus     int
	}{
		{"/", "text/html; charset=utf-8", 200},
		{"/static/app.js", "text/javascript; charset=utf-8", 200},
		{"/static/style.css", "text/css; charset=utf-8", 200},
		{"/nope", "text/plain; charset=utf-8", 404},
		{"/ws", "text/plain; charset=utf-8", 400}, // not an upgrade
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.srv.URL+tt.path, nil)
			req.Header.Set("User-Agent", "Secret-Agent/7")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type %q, want %q", got, tt.wantType)
			}
			want := map[string]string{
				"Content-Security-Policy": contentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
				"Cache-Control":           "no-store",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
				t.Errorf("Set-Cookie %q: the web chat sets no cookies", c)
			}
		})
	}
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'",
		"img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(contentSecurityPolicy, directive) {
			t.Errorf("CSP lacks %q", directive)
		}
	}
	if strings.Contains(contentSecurityPolicy, "unsafe") {
		t.Errorf("CSP allows something unsafe: %s", contentSecurityPolicy)
	}
	if l := h.logs.String(); strings.Contains(l, "127.0.0.1") || strings.Contains(l, "Secret-Agent") {
		t.Errorf("logs hold the visitor's address or user agent:\n%s", l)
	}
}

// TestPageHasNoThirdPartyOrInlineCode reads the embedded files: everything loads from the page's own
// origin, no inline script or style (the CSP would block it anyway), and member text never meets an
// HTML sink.
func TestPageHasNoThirdPartyOrInlineCode(t *testing.T) {
	files := []string{"static/index.html", "static/app.js", "static/style.css"}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, f := range files {
		b, err := staticFiles.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if m := external.FindString(s); m != "" {
			t.Errorf("%s refers to another site: %q", f, m)
		}
		if strings.HasSuffix(f, ".js") {
			for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
				if strings.Contains(s, sink) {
					t.Errorf("%s uses %s", f, sink)
				}
			}
		}
		if strings.HasSuffix(f, ".html") {
			if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(s) || !strings.Contains(s, `<script src="/static/app.js"`) {
				t.Errorf("%s has inline script", f)
			}
			if regexp.MustCompile(`(?i)\sstyle=|<style|\son[a-z]+=`).MatchString(s) {
				t.Errorf("%s has inline style or event handlers", f)
			}
		}
	}
}

func TestNotRunning(t *testing.T) {
	p, err := New(Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial before Run: err %v, resp %v; want 503", err, resp)
	}
	if _, err := p.SendText(context.Background(), bridge.Addr{Platform: Name, User: "x", Chat: "x"}, bridge.Message{}); !errors.Is(err, bridge.ErrRecipientGone) {
		t.Errorf("SendText to nobody: %v, want ErrRecipientGone", err)
	}
}

func TestOrigin(t *testing.T) {
	h := start(t, Config{Origins: []string{"https://chat.example.org"}})
	tests := []struct {
		name, origin string
		ok           bool
	}{
		{"same origin", h.srv.URL, true},
		{"no origin (not a browser)", "", true},
		{"configured origin", "https://chat.example.org", true},
		{"other site", "https://evil.example.com", false},
		{"configured host, other scheme", "http://chat.example.org", false},
		{"garbage", "::not a url", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(h.wsURL(), hdr)
			if tt.ok {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				conn.Close()
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded from a foreign origin")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("resp %v, want 403", resp)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if _, err := New(Config{Origins: []string{"chat.example.org"}}, log); err == nil {
		t.Error("an origin without scheme was accepted")
	}
	if _, err := New(Config{}, log, WithInboundRate(0, 1)); err == nil {
		t.Error("a zero inbound rate was accepted")
	}
}

// A nil logger discards, as in every adapter.
func TestNewNilLoggerDiscards(t *testing.T) {
	if _, err := New(Config{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestInboundReachesTheBridge(t *testing.T) {
	h := start(t, Config{})
	a := h.dial(t, "", 0)
	b := h.dial(t, "", 0)
	if a.hello.Token == b.hello.Token {
		t.Fatal("two visitors got the same token")
	}
	if a.hello.Simulate {
		t.Error("simulate is on without WithSimulatedPayments")
	}
	if a.hello.MaxText != MaxText {
		t.Errorf("hello maxText %d, want %d", a.hello.MaxText, MaxText)
	}
	tests := []struct{ send, want string }{
		{"/newroom", "/newroom"},
		{"  hello 👋🏽 world  ", "hello 👋🏽 world"},
		{"<script>alert(1)</script>", "<script>alert(1)</script>"},
		{"multi\nline", "multi\nline"},
	}
	var from bridge.Addr
	for _, tt := range tests {
		a.send(inbound{Type: "text", Text: tt.send})
		in := next(t, h.rec)
		if in.Text != tt.want {
			t.Errorf("sent %q, bridge got %q, want %q", tt.send, in.Text, tt.want)
		}
		if in.From.Platform != Name || in.From.User == "" || in.From.Chat != in.From.User {
			t.Errorf("From %+v, want platform web and Chat == User", in.From)
		}
		if from != (bridge.Addr{}) && in.From != from {
			t.Errorf("From changed within one session: %+v then %+v", from, in.From)
		}
		from = in.From
	}
	if b.addr(h.rec) == from {
		t.Error("two visitors share an Addr")
	}
	// Whitespace only is nothing to send.
	a.send(inbound{Type: "text", Text: "   \n "})
	a.send(inbound{Type: "text", Text: "after"})
	if in := next(t, h.rec); in.Text != "after" {
		t.Errorf("got %q, want the blank message skipped", in.Text)
	}
	if strings.Contains(h.logs.String(), "hello") {
		t.Errorf("logs hold message text:\n%s", h.logs.String())
	}
}

func TestMessageSizeLimit(t *testing.T) {
	h := start(t, Config{})
	c := h.dial(t, "", 0)
	emoji := "😀" // two UTF-16 code units, as the browser counts it
	tests := []struct {
		name string
		text string
		ok   bool
	}{
		{"at the limit", strings.Repeat("a", MaxText), true},
		{"emoji at the limit", strings.Repeat(emoji, MaxText/2), true},
		{"one over", strings.Repeat("a", MaxText+1), false},
		{"emoji one over", strings.Repeat(emoji, MaxText/2) + "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.rec.Count()
			c.send(inbound{Type: "text", Text: tt.text})
			if tt.ok {
				if in := next(t, h.rec); in.Text != tt.text {
					t.Errorf("bridge got %d bytes, want %d", len(in.Text), len(tt.text))
				}
				return
			}
			ev := c.next()
			if ev.Type != "error" || !strings.Contains(ev.Error, "the limit is 4000") {
				t.Errorf("got %+v, want a clear too-long error", ev)
			}
			// The refused message never reached the bridge: the next one is the next thing it sees.
			c.send(inbound{Type: "text", Text: "marker"})
			if in := next(t, h.rec); in.Text != "marker" || h.rec.Count() != before+1 {
				t.Errorf("bridge got %q (count %d, before %d)", in.Text, h.rec.Count(), before)
			}
		})
	}
	t.Run("frame over the hard cap closes with 1009", func(t *testing.T) {
		c.send(inbound{Type: "text", Text: strings.Repeat("a", maxFrame)})
		if code := c.closeCode(); code != websocket.CloseMessageTooBig {
			t.Errorf("close code %d, want %d", code, websocket.CloseMessageTooBig)
		}
	})
}

func TestRateLimit(t *testing.T) {
	// A rate so low the bucket cannot refill during the test: exactly the burst gets through.
	h := start(t, Config{}, WithInboundRate(0.001, 3))
	c := h.dial(t, "", 0)
	for i := range 6 {
		c.send(inbound{Type: "text", Text: "m" + string(rune('0'+i))})
	}
	for range 3 {
		ev := c.next()
		if ev.Type != "error" || !strings.Contains(ev.Error, "too fast") {
			t.Fatalf("got %+v, want a slow-down error", ev)
		}
	}
	for i := range 3 {
		if in := next(t, h.rec); in.Text != "m"+string(rune('0'+i)) {
			t.Errorf("bridge got %q", in.Text)
		}
	}
	if n := h.rec.Count(); n != 3 {
		t.Errorf("bridge got %d messages, want the burst of 3", n)
	}
	// Another connection has its own budget.
	d := h.dial(t, "", 0)
	d.send(inbound{Type: "text", Text: "other"})
	if in := next(t, h.rec); in.Text != "other" {
		t.Errorf("bridge got %q", in.Text)
	}
}

func TestSendRendersEveryKind(t *testing.T) {
	h := start(t, Config{}, WithSimulatedPayments(func(context.Context, string) error { return nil }))
	c := h.dial(t, "", 0)
	to := c.addr(h.rec)
	ctx := context.Background()
	expires := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)
	png := []byte("\x89PNG fake")
	tests := []struct {
		name  string
		send  func() error
		check func(event) string
	}{
		{"relay", func() error {
			_, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "hi 🎉 <b>x</b>"})
			return err
		}, func(ev event) string {
			if ev.Kind != "relay" || ev.From != "Blue Fox" || ev.Text != "hi 🎉 <b>x</b>" {
				return "relay mangled"
			}
			return ""
		}},
		{"combined relay", func() error {
			_, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, Lines: []bridge.Line{{From: "Blue Fox", Text: "a"}, {From: "Red Owl", Text: "b"}}})
			return err
		}, func(ev event) string {
			if ev.Kind != "relay" || len(ev.Lines) != 2 || ev.Lines[0] != (lineJSON{"Blue Fox", "a"}) || ev.Lines[1] != (lineJSON{"Red Owl", "b"}) {
				return "combined relay mangled"
			}
			return ""
		}},
		{"notice", func() error {
			_, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindNotice, Text: "Blue Fox joined"})
			return err
		}, func(ev event) string {
			if ev.Kind != "notice" || ev.Text != "Blue Fox joined" {
				return "notice mangled"
			}
			return ""
		}},
		{"reply with code and parts", func() error {
			_, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindReply, Text: "Password:", Code: "apple-river", Part: 2, Parts: 3})
			return err
		}, func(ev event) string {
			if ev.Kind != "reply" || ev.Code != "apple-river" || ev.Part != 2 || ev.Parts != 3 {
				return "reply mangled"
			}
			return ""
		}},
		{"dev invoice", func() error {
			inv := &bridge.Invoice{ID: "inv1", BOLT11: "lnbcrt1...", URI: "lightning:lnbcrt1...", AmountSat: 1000, ExpiresAt: expires, QR: png, Dev: true}
			_, err := h.p.SendImage(ctx, to, bridge.Image{Name: "invoice.png", PNG: png}, bridge.Message{Kind: bridge.KindInvoice, Text: "Pay to open", Invoice: inv})
			return err
		}, func(ev event) string {
			inv := ev.Invoice
			switch {
			case ev.Kind != "invoice" || inv == nil:
				return "not an invoice"
			case inv.ID != "inv1" || inv.BOLT11 != "lnbcrt1..." || inv.AmountSat != 1000 || inv.ExpiresAt != expires.UnixMilli():
				return "invoice fields mangled"
			case inv.QR != "data:image/png;base64,iVBORyBmYWtl":
				return "QR is not the PNG as a data: URL: " + inv.QR
			case !inv.Dev || !inv.Simulate:
				return "a dev invoice should offer simulation"
			case ev.Now == 0:
				return "no server clock for the countdown"
			}
			return ""
		}},
		{"real invoice is never simulated", func() error {
			inv := &bridge.Invoice{ID: "inv2", BOLT11: "lnbc1...", AmountSat: 1000, ExpiresAt: expires}
			_, err := h.p.SendImage(ctx, to, bridge.Image{PNG: png}, bridge.Message{Kind: bridge.KindInvoice, Invoice: inv})
			return err
		}, func(ev event) string {
			if ev.Invoice == nil || ev.Invoice.Simulate || ev.Invoice.QR == "" {
				return "a non-dev invoice must not offer simulation (and the image is its QR)"
			}
			return ""
		}},
		{"image", func() error {
			_, err := h.p.SendImage(ctx, to, bridge.Image{PNG: png}, bridge.Message{Kind: bridge.KindReply, Text: "look"})
			return err
		}, func(ev event) string {
			if ev.Image != "data:image/png;base64,iVBORyBmYWtl" || ev.Text != "look" {
				return "image mangled"
			}
			return ""
		}},
	}
	var seq uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.send(); err != nil {
				t.Fatal(err)
			}
			ev := c.next()
			if ev.Type != "msg" || ev.Seq != seq+1 {
				t.Errorf("type %q seq %d, want msg seq %d", ev.Type, ev.Seq, seq+1)
			}
			seq = ev.Seq
			if problem := tt.check(ev); problem != "" {
				t.Errorf("%s: %+v", problem, ev)
			}
		})
	}
	t.Run("wrong platform", func(t *testing.T) {
		_, err := h.p.SendText(ctx, bridge.Addr{Platform: "telegram", User: to.User}, bridge.Message{})
		if !errors.Is(err, bridge.ErrRejected) {
			t.Errorf("got %v, want ErrRejected", err)
		}
	})
}

func TestSimulatedPayment(t *testing.T) {
	paid := make(chan string, 4)
	pay := func(_ context.Context, id string) error {
		if id == "expired" {
			return errors.New("invoice expired")
		}
		paid <- id
		return nil
	}
	h := start(t, Config{}, WithSimulatedPayments(pay))
	c := h.dial(t, "", 0)
	if !c.hello.Simulate {
		t.Fatal("hello does not offer simulated payments")
	}
	to := c.addr(h.rec)
	other := h.dial(t, "", 0)
	for _, id := range []string{"mine", "expired"} {
		inv := &bridge.Invoice{ID: id, Dev: true, ExpiresAt: time.Now().Add(time.Minute)}
		if _, err := h.p.SendImage(context.Background(), to, bridge.Image{}, bridge.Message{Kind: bridge.KindInvoice, Invoice: inv}); err != nil {
			t.Fatal(err)
		}
		c.next()
	}
	tests := []struct {
		name, id  string
		by        *client
		wantError string
	}{
		{"someone else's invoice", "mine", other, "not made for you"},
		{"unknown invoice", "guess", c, "not made for you"},
		{"backend refuses", "expired", c, "simulated payment failed"},
		{"own invoice", "mine", c, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.by.send(inbound{Type: "pay", Invoice: tt.id})
			if tt.wantError == "" {
				select {
				case id := <-paid:
					if id != tt.id {
						t.Errorf("paid %q, want %q", id, tt.id)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("not paid")
				}
				return
			}
			ev := tt.by.next()
			if ev.Type != "error" || !strings.Contains(ev.Error, tt.wantError) {
				t.Errorf("got %+v, want error %q", ev, tt.wantError)
			}
		})
	}
	if len(paid) != 0 {
		t.Errorf("unexpected payments: %d", len(paid))
	}

	t.Run("off without the option", func(t *testing.T) {
		h := start(t, Config{})
		c := h.dial(t, "", 0)
		c.send(inbound{Type: "pay", Invoice: "x"})
		if ev := c.next(); ev.Type != "error" || !strings.Contains(ev.Error, "development payment backend") {
			t.Errorf("got %+v", ev)
		}
	})
}

func TestResumeAfterDrop(t *testing.T) {
	h := start(t, Config{})
	c := h.dial(t, "", 0)
	to := c.addr(h.rec)
	ctx := context.Background()
	if _, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, From: "A", Text: "one"}); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); ev.Seq != 1 {
		t.Fatalf("got %+v", ev)
	}
	c.conn.Close()
	// While the page is away, messages wait for it.
	for _, s := range []string{"two", "three"} {
		if _, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, From: "A", Text: s}); err != nil {
			t.Fatalf("SendText while away: %v", err)
		}
	}
	r := h.dial(t, c.hello.Token, 1)
	if !r.hello.Resumed {
		t.Fatal("not resumed")
	}
	for i, want := range []string{"two", "three"} {
		if ev := r.next(); ev.Text != want || ev.Seq != uint64(i+2) {
			t.Errorf("got %q seq %d, want %q seq %d", ev.Text, ev.Seq, want, i+2)
		}
	}
	if got := r.addr(h.rec); got != to {
		t.Errorf("resumed session is %+v, want %+v", got, to)
	}

	t.Run("unknown token is a new visitor", func(t *testing.T) {
		n := h.dial(t, "not-a-token", 0)
		if n.hello.Resumed || n.hello.Token == c.hello.Token {
			t.Errorf("hello %+v", n.hello)
		}
	})
	t.Run("a second connection takes the session over", func(t *testing.T) {
		second := h.dial(t, r.hello.Token, 3)
		if !second.hello.Resumed {
			t.Fatal("not resumed")
		}
		if code := r.closeCode(); code != closeReplaced {
			t.Errorf("old connection closed with %d, want %d", code, closeReplaced)
		}
		if _, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindNotice, Text: "four"}); err != nil {
			t.Fatal(err)
		}
		if ev := second.next(); ev.Text != "four" {
			t.Errorf("got %+v", ev)
		}
	})
}

func TestSessionEndsAfterGrace(t *testing.T) {
	h := start(t, Config{}, WithResumeGrace(20*time.Millisecond))
	c := h.dial(t, "", 0)
	to := c.addr(h.rec)
	c.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := h.p.SendText(context.Background(), to, bridge.Message{Kind: bridge.KindNotice, Text: "x"})
		if errors.Is(err, bridge.ErrRecipientGone) {
			break
		}
		if err != nil {
			t.Fatalf("SendText: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("session still alive 5s after its page left")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := h.dial(t, c.hello.Token, 0); r.hello.Resumed {
		t.Error("an expired session was resumed")
	}
	// The bridge was told the visitor is gone, once, so that they leave their room.
	if in := next(t, h.rec); !in.Left || in.From != to || in.Text != "" {
		t.Errorf("got %+v, want %v left", in, to)
	}
}

// TestResumedSessionDoesNotLeave: a page back within the grace stays in its room; the grace that
// started when it dropped ends without telling the bridge anything.
func TestResumedSessionDoesNotLeave(t *testing.T) {
	const grace = 50 * time.Millisecond
	h := start(t, Config{}, WithResumeGrace(grace))
	c := h.dial(t, "", 0)
	to := c.addr(h.rec)
	dropped := time.Now()
	c.conn.Close()
	back := h.dial(t, c.hello.Token, 0)
	if !back.hello.Resumed {
		t.Fatal("not resumed")
	}
	// Well past the end of the first grace, the session still answers as the same visitor.
	time.Sleep(time.Until(dropped.Add(3 * grace)))
	if got := back.addr(h.rec); got != to {
		t.Fatalf("resumed as %v, want %v", got, to)
	}
	if n := h.rec.Count(); n != 2 {
		t.Errorf("the bridge got %d inbound messages, want the two /who: %+v", n, h.rec.All())
	}
}

func TestBackpressure(t *testing.T) {
	h := start(t, Config{}, WithResumeGrace(time.Hour))
	c := h.dial(t, "", 0)
	to := c.addr(h.rec)
	c.conn.Close()
	// The server may still write a few into the dying connection before it notices the close.
	var err error
	n := 0
	for ; n < 2*maxPending && err == nil; n++ {
		_, err = h.p.SendText(context.Background(), to, bridge.Message{Kind: bridge.KindNotice, Text: "x"})
	}
	var rl *bridge.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("got %v after %d messages, want a RateLimitError", err, n)
	}
	if n <= maxPending {
		t.Errorf("slowed down after %d messages, want more than %d queued first", n, maxPending)
	}
}

func TestShutdownFlushesAndSaysGoodbye(t *testing.T) {
	h := start(t, Config{})
	c := h.dial(t, "", 0)
	to := c.addr(h.rec)
	if _, err := h.p.SendText(context.Background(), to, bridge.Message{Kind: bridge.KindNotice, Text: "room is gone"}); err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	var got []string
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var ev event
		err := c.conn.ReadJSON(&ev)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != websocket.CloseGoingAway {
				t.Errorf("close code %d, want %d", ce.Code, websocket.CloseGoingAway)
			}
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got = append(got, ev.Text)
	}
	if len(got) != 1 || got[0] != "room is gone" {
		t.Errorf("before the goodbye the page got %q", got)
	}
	if _, err := h.p.SendText(context.Background(), to, bridge.Message{}); !errors.Is(err, bridge.ErrRecipientGone) {
		t.Errorf("SendText after Run: %v, want ErrRecipientGone", err)
	}
}

func TestBadHello(t *testing.T) {
	h := start(t, Config{})
	conn, _, err := websocket.DefaultDialer.Dial(h.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(inbound{Type: "text", Text: "no hello"}); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn}
	if code := c.closeCode(); code != closeBadHello {
		t.Errorf("close %d, want %d", code, closeBadHello)
	}
	if h.rec.Count() != 0 {
		t.Error("text before hello reached the bridge")
	}
}
