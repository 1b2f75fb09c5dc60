package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
)

//go:embed static
var staticFiles embed.FS

// contentSecurityPolicy allows the page its own script, style and WebSocket, and the QR code as a
// data: image; nothing else loads, nothing inline runs, nothing may frame it.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
		// Nothing here is worth a cache entry that outlives the visit.
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

func serveIndex(w http.ResponseWriter, r *http.Request) {
	page, err := staticFiles.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}

// inbound is what the page sends.
type inbound struct {
	Type    string `json:"type"` // "hello", "text", "pay"
	Text    string `json:"text,omitempty"`
	Invoice string `json:"invoice,omitempty"` // "pay": the invoice ID
	// "hello": the token of the session to resume, and the last Seq the page shows.
	// ID is the page's id of the visitor's own line ("text"), so the wipe can have it removed.
	ID     string `json:"id,omitempty"`
	Resume string `json:"resume,omitempty"`
	Last   uint64 `json:"last,omitempty"`
	// ReplyTo ("text") and Target ("edit", "unsend", "react") are page ids of messages: a seq, or
	// "o3" for the visitor's own line. Emoji and Remove are a reaction put on or taken off.
	ReplyTo string `json:"replyTo,omitempty"`
	Target  string `json:"target,omitempty"`
	Emoji   string `json:"emoji,omitempty"`
	Remove  bool   `json:"remove,omitempty"`
}

// Close codes the page understands (4000-4999 are the application's).
const (
	closeReplaced = 4000 // the same session opened a newer connection
	closeBadHello = 4001
	// RFC 6455 codes for refusals the page shows with their reason.
	closePolicy        = websocket.ClosePolicyViolation // 1008: too many from one network, control frame flood
	closeTryAgainLater = websocket.CloseTryAgainLater   // 1013: kumo is full
)

func (p *Adapter) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		CheckOrigin:     p.checkOrigin,
	}
}

// checkOrigin lets only the page itself (or a configured origin) open the WebSocket, so no other
// site can make a visitor's browser talk to kumo.
func (p *Adapter) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		// Not a browser: it carries no ambient authority (there are no cookies) to abuse.
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, allowed := range p.cfg.Origins {
		a, _ := parseOrigin(allowed)
		if strings.EqualFold(a.Scheme, u.Scheme) && strings.EqualFold(a.Host, u.Host) {
			return true
		}
	}
	return false
}

func parseOrigin(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%q is not an origin like https://chat.example.org", s)
	}
	return u, nil
}

// acquire registers a connection with the running platform; it fails unless Run is running.
func (p *Adapter) acquire() (bridge.Handler, context.Context, chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.h == nil {
		return nil, nil, nil, false
	}
	p.conns.Add(1) // under mu: Run sets h to nil under mu before it waits
	return p.h, p.runCtx, p.closing, true
}

func (p *Adapter) serveWS(w http.ResponseWriter, r *http.Request) {
	h, ctx, closing, ok := p.acquire()
	if !ok {
		http.Error(w, "kumo is not running", http.StatusServiceUnavailable)
		return
	}
	defer p.conns.Done()
	origin := originOf(clientIP(r, p.opts.trusted))
	refused := p.limit.acquire(origin)
	if refused == nil {
		defer p.limit.release(origin)
	}
	conn, err := p.upgrader().Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade answered the request already; a refused origin is not worth a log line
	}
	defer conn.Close()
	if refused != nil {
		// Refused after the upgrade, not before: a browser shows a page nothing of a refused
		// handshake, but it hands over a close frame's code and reason.
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(refused.code, refused.reason),
			time.Now().Add(time.Second))
		return
	}
	conn.SetReadLimit(maxFrame)
	p.limitControlFrames(conn)

	s, resumed, last, err := p.hello(conn)
	if err != nil {
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(closeBadHello, "expected hello"), time.Now().Add(time.Second))
		return
	}
	gen, kick := s.attach(last)
	hello := event{Type: "hello", Token: s.token, Resumed: resumed, Simulate: p.opts.pay != nil,
		MaxText: MaxText, Now: time.Now().UnixMilli()}

	readerDone := make(chan struct{})
	writerDone := make(chan struct{})
	ctl := make(chan event, 16)
	go func() {
		defer close(writerDone)
		p.write(conn, s, gen, hello, ctl, kick, closing, readerDone)
	}()
	p.read(ctx, conn, s, origin, h, ctl)
	close(readerDone)
	<-writerDone
	if s.detach(gen) {
		p.detached(s, gen)
	}
}

// limitControlFrames closes a connection that sends pings or pongs faster than a page ever would:
// each one costs a wake-up (and a ping a write), outside the message rate limit.
func (p *Adapter) limitControlFrames(conn *websocket.Conn) {
	limiter := rate.NewLimiter(p.opts.controlRate, p.opts.controlBurst)
	flood := func() error {
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(closePolicy, "too many control frames"), time.Now().Add(time.Second))
		return errControlFlood
	}
	conn.SetPingHandler(func(data string) error {
		if !limiter.Allow() {
			return flood()
		}
		// What gorilla's default handler does: answer, and let a failed answer surface on the next read.
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	pong := func(string) error {
		if !limiter.Allow() {
			return flood()
		}
		return nil
	}
	conn.SetPongHandler(pong)
}

var errControlFlood = errors.New("web: control frame flood")

// hello reads the page's first frame: a new visitor, or one resuming their session.
func (p *Adapter) hello(conn *websocket.Conn) (s *session, resumed bool, last uint64, err error) {
	_ = conn.SetReadDeadline(time.Now().Add(p.opts.helloWithin))
	var in inbound
	if err := conn.ReadJSON(&in); err != nil {
		return nil, false, 0, fmt.Errorf("web: hello: %w", err)
	}
	if in.Type != "hello" {
		return nil, false, 0, errors.New("web: first frame is not a hello")
	}
	if s := p.resume(in.Resume); s != nil {
		return s, true, in.Last, nil
	}
	s, err = p.newSession()
	return s, false, 0, err
}

// read hands the visitor's messages to the bridge, refusing what is too long or too fast.
func (p *Adapter) read(ctx context.Context, conn *websocket.Conn, s *session, origin string, h bridge.Handler, ctl chan<- event) {
	limiter := rate.NewLimiter(p.opts.rate, p.opts.burst)
	refuse := func(msg string) {
		select {
		case ctl <- event{Type: "error", Error: msg}:
		default: // the page is flooding us and not reading: it loses the explanations
		}
	}
	deadline := func() { _ = conn.SetReadDeadline(time.Now().Add(2*p.opts.pingEvery + 10*time.Second)) }
	deadline()
	limitPong := conn.PongHandler()
	conn.SetPongHandler(func(data string) error {
		if err := limitPong(data); err != nil {
			return err
		}
		deadline()
		return nil
	})
	for {
		var in inbound
		if err := conn.ReadJSON(&in); err != nil {
			// Closed, timed out, or over maxFrame (gorilla has sent 1009 "message too big").
			return
		}
		deadline()
		if !limiter.Allow() {
			refuse("Slow down: you are sending messages too fast. That one was not sent.")
			continue
		}
		switch in.Type {
		case "text":
			text := strings.TrimSpace(in.Text)
			if text == "" {
				continue
			}
			if n := bridge.UTF16Len(text); n > MaxText {
				refuse(fmt.Sprintf("Your message is %d characters long; the limit is %d. It was not sent.", n, MaxText))
				continue
			}
			h.HandleInbound(ctx, bridge.Inbound{From: s.addr(), Text: text, ID: ownID(in.ID), Origin: origin, ReplyTo: pageID(in.ReplyTo)})
		case "edit", "unsend", "react":
			target := pageID(in.Target)
			if target == "" {
				refuse("The page sent something this server does not understand; reload it.")
				continue
			}
			act := bridge.Inbound{From: s.addr(), Target: target, ID: target, Origin: origin}
			switch {
			case in.Type == "edit":
				text := strings.TrimSpace(in.Text)
				if n := bridge.UTF16Len(text); n > MaxText {
					refuse(fmt.Sprintf("Your message is %d characters long; the limit is %d. It was not changed.", n, MaxText))
					continue
				}
				act.Action, act.Text = bridge.ActionEdit, text
			case in.Type == "unsend":
				act.Action = bridge.ActionUnsend
			case in.Remove:
				act.Action, act.Emoji, act.ID = bridge.ActionUnreact, in.Emoji, ""
			default:
				act.Action, act.Emoji, act.ID = bridge.ActionReact, in.Emoji, ""
			}
			h.HandleInbound(ctx, act)
		case "pay":
			if p.opts.pay == nil {
				refuse("Simulated payments are only available with the development payment backend.")
				continue
			}
			if !s.hasInvoice(in.Invoice) {
				refuse("That invoice was not made for you.")
				continue
			}
			payCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := p.opts.pay(payCtx, in.Invoice)
			cancel()
			if err != nil {
				p.log.Warn("simulated payment failed", "err", err)
				refuse("The simulated payment failed: the invoice may have expired. Ask for a new room.")
			}
		default:
			refuse("The page sent something this server does not understand; reload it.")
		}
	}
}

// write is the connection's only writer: the bridge's messages in order, control events, pings, and
// the goodbye when kumo stops or the session moved to a newer connection.
func (p *Adapter) write(conn *websocket.Conn, s *session, gen uint64, hello event, ctl <-chan event,
	kick, closing, readerDone <-chan struct{}) {
	const writeWait = 10 * time.Second
	send := func(ev event) error {
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		return conn.WriteJSON(ev)
	}
	flush := func() error {
		// What a failed write loses, the page gets again when it resumes with the last Seq it shows.
		for _, ev := range s.take(gen) {
			if err := send(ev); err != nil {
				return err
			}
		}
		return nil
	}
	goodbye := func(code int, reason string) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
			time.Now().Add(time.Second))
		_ = conn.Close() // ends the reader
	}
	if send(hello) != nil || flush() != nil {
		_ = conn.Close()
		return
	}
	ping := time.NewTicker(p.opts.pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-s.wake:
			if flush() != nil {
				_ = conn.Close()
				return
			}
		case ev := <-ctl:
			if send(ev) != nil {
				_ = conn.Close()
				return
			}
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)) != nil {
				_ = conn.Close()
				return
			}
		case <-kick:
			goodbye(closeReplaced, "this chat was opened again elsewhere")
			return
		case <-closing:
			_ = flush()
			goodbye(websocket.CloseGoingAway, "kumo is shutting down")
			return
		case <-readerDone:
			return
		}
	}
}
