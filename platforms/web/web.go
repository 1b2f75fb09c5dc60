// Package web is kumo's own small web chat: a page served by kumo itself where a visitor is a member
// like any Telegram, Discord or Matrix user. It is the platform kumo runs when it has no configuration.
//
// A visitor is one WebSocket session. The session id lives only in the page's memory: no cookie, no
// local storage, so reloading the page makes a new, unlinkable visitor. A dropped connection (network
// blip, laptop lid) resumes within a grace period with a secret token the page keeps in memory.
//
// The adapter does no room logic: the page's buttons send the same text commands a messenger user
// types ("/newroom", "/join <password>", ...), and the page renders the Messages the bridge sends.
package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
)

// Name is the platform's name in bridge.Addr.Platform.
const Name = "web"

// Config is the `web` section of kumo's configuration. The listen address is not here: the page is
// served by kumo's one HTTP server (`http.listen`), which mounts Handler at "/".
type Config struct {
	Enabled bool `yaml:"enabled"`
	// Origins lists extra origins (scheme://host[:port]) allowed to open the WebSocket, for a reverse
	// proxy that rewrites the Host header. The page's own origin is always allowed.
	Origins []string `yaml:"origins"`
	// PublicURL is the address visitors open (https://chat.example.org) when it is not the listen
	// address: requests for any other host name are refused, against DNS rebinding. /invite's web
	// links point here.
	PublicURL string `yaml:"public_url"`
	// MaxConnectionsPerIP caps the WebSockets open at once from one client address (IPv6: one /64);
	// 0 means DefaultMaxConnectionsPerIP.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxConnections caps the WebSockets open at once in all; 0 means DefaultMaxConnections.
	MaxConnections int `yaml:"max_connections"`
}

// Limits of the web platform.
const (
	// MaxText is the longest message a visitor may send, and the longest one the page is sent, in
	// UTF-16 code units (what the browser's String.length counts).
	MaxText = 4000
	// maxFrame caps one inbound WebSocket frame; a frame over it closes the connection (1009). It is
	// far above MaxText (JSON may escape a character into 6 bytes), so the clear "too long" answer,
	// not the close, is what a visitor normally meets.
	maxFrame = 64 << 10
	// maxPending caps what waits for one visitor: past it the bridge is told to slow down.
	maxPending = 512
)

// Option configures an Adapter.
type Option func(*options)

type options struct {
	pay         func(ctx context.Context, invoiceID string) error
	rate        rate.Limit
	burst       int
	grace       time.Duration
	pingEvery   time.Duration
	helloWithin time.Duration
	trusted     []netip.Prefix // proxies whose X-Forwarded-For is believed
	listen      string         // the HTTP server's listen address, for the Host check
	// control frames (ping, pong) one connection may send per second, and their burst
	controlRate  rate.Limit
	controlBurst int
}

// WithSimulatedPayments shows a "simulate payment" control next to each invoice that calls pay with
// the invoice's ID. Give it only with the development payment backend (lightning.Dev's Pay): the page
// labels it as moving no real money.
func WithSimulatedPayments(pay func(ctx context.Context, invoiceID string) error) Option {
	return func(o *options) { o.pay = pay }
}

// WithInboundRate sets how many messages per second one connection may send, and the burst allowed.
func WithInboundRate(perSecond float64, burst int) Option {
	return func(o *options) { o.rate, o.burst = rate.Limit(perSecond), burst }
}

// WithResumeGrace sets how long a disconnected visitor's session is kept for the page to reconnect.
// After it the visitor is gone: the bridge is told (bridge.Inbound.Left) and takes them out of their
// room, and messages still on their way fail with bridge.ErrRecipientGone.
func WithResumeGrace(d time.Duration) Option {
	return func(o *options) { o.grace = d }
}

// Adapter is the web chat. It implements bridge.Platform; Handler serves the page and its WebSocket.
type Adapter struct {
	log  *slog.Logger
	cfg  Config
	opts options

	mu       sync.Mutex
	h        bridge.Handler  // set while Run runs
	runCtx   context.Context // Run's context, for HandleInbound
	sessions map[string]*session
	byToken  map[string]*session
	conns    sync.WaitGroup // live WebSocket handlers
	closing  chan struct{}  // closed when Run ends: connections say goodbye and close
	limit    *connLimiter
	// blobs are the files pages may fetch, uploadMem the budget of uploads not yet relayed (media.go).
	blobs     *blobs
	uploadMem *semaphore.Weighted
}

var (
	_ bridge.Platform = (*Adapter)(nil)
	_ bridge.Inviter  = (*Adapter)(nil)
)

// InviteLink implements bridge.Inviter: the page with the token in its fragment, which browsers do
// not send to the server (so it is in no request line or access log); the page hands it over the
// WebSocket.
func (p *Adapter) InviteLink(token string) (string, bool) {
	base := strings.TrimRight(p.cfg.PublicURL, "/")
	if base == "" && p.opts.listen != "" {
		// No public address configured: the page is reached where kumo listens (on this machine,
		// for a listener on every address).
		host, port, err := net.SplitHostPort(p.opts.listen)
		if ip, perr := netip.ParseAddr(host); err == nil && (host == "" || (perr == nil && ip.IsUnspecified())) {
			host = "localhost"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	if base == "" {
		return "", false
	}
	return base + "/#join=" + token, true
}

// New makes the web platform from a valid cfg; a nil log discards. It serves nothing until Handler is
// mounted, and accepts no visitor until Run is called.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := options{
		rate:        5,
		burst:       10,
		grace:       time.Minute,
		pingEvery:   25 * time.Second,
		helloWithin: 10 * time.Second,
		// A page answers one ping per pingEvery and sends none of its own; a little more is allowed
		// for other clients, a flood is not.
		controlRate:  1,
		controlBurst: 10,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.rate <= 0 || o.burst < 1 {
		return nil, fmt.Errorf("web: inbound rate %v/s burst %d must be positive", o.rate, o.burst)
	}
	return &Adapter{
		log:       log.With("platform", Name),
		cfg:       cfg,
		opts:      o,
		sessions:  make(map[string]*session),
		byToken:   make(map[string]*session),
		limit:     newConnLimiter(cfg.perIPCap(), cfg.globalCap()),
		blobs:     newBlobs(defaultBlobMemory),
		uploadMem: newUploadBudget(),
	}, nil
}

// Name is "web".
func (p *Adapter) Name() string { return Name }

// Limits: the page shows any length, but the bridge splits at MaxText so one bubble stays readable.
// The page takes every message as its own send (there is no rate to stay under), so the core never
// combines a backlog for it.
func (p *Adapter) Limits() bridge.Limits {
	return bridge.Limits{MaxText: MaxText, SendsAlone: true}
}

// Run accepts visitors and hands what they send to h until ctx ends, then tells every open page that
// the server is going away and closes the connections.
func (p *Adapter) Run(ctx context.Context, h bridge.Handler) error {
	if h == nil {
		return errors.New("web: nil handler")
	}
	p.mu.Lock()
	if p.h != nil {
		p.mu.Unlock()
		return errors.New("web: already running")
	}
	p.h, p.runCtx, p.closing = h, ctx, make(chan struct{})
	closing := p.closing
	p.mu.Unlock()
	if r, ok := h.(bridge.ReadyNotifier); ok {
		r.Ready(Name) // nothing to connect to: it serves once Handler is mounted
	}

	<-ctx.Done()

	p.mu.Lock()
	p.h = nil
	close(closing)
	for id, s := range p.sessions {
		s.expire()
		p.blobs.drop(id, nil)
		delete(p.sessions, id)
	}
	clear(p.byToken)
	p.mu.Unlock()
	// Each connection writes what it still holds (the bridge's "room is gone" notices) and closes.
	p.conns.Wait()
	return nil
}

// SendText queues m for the visitor at to.
func (p *Adapter) SendText(_ context.Context, to bridge.Addr, m bridge.Message) (bridge.MessageID, error) {
	return p.send(to, m, nil)
}

// SendImage queues m with img shown above it (the invoice's QR code).
func (p *Adapter) SendImage(_ context.Context, to bridge.Addr, img bridge.Image, m bridge.Message) ([]bridge.MessageID, error) {
	id, err := p.send(to, m, img.PNG)
	if err != nil {
		return nil, err
	}
	return []bridge.MessageID{id}, nil
}

func (p *Adapter) send(to bridge.Addr, m bridge.Message, png []byte) (bridge.MessageID, error) {
	if to.Platform != Name {
		return "", fmt.Errorf("web: address of platform %q: %w", to.Platform, bridge.ErrRejected)
	}
	p.mu.Lock()
	s := p.sessions[to.User]
	p.mu.Unlock()
	if s == nil {
		return "", fmt.Errorf("web: visitor's page is closed: %w", bridge.ErrRecipientGone)
	}
	// The page numbers what it shows by Seq, so Seq is the message's id there.
	seq, err := s.enqueue(toEvent(m, png, p.opts.pay != nil))
	if err != nil {
		return "", err
	}
	if m.Room != nil && m.Room.Closed {
		// The visitor's room is over for them: its files die with it.
		p.blobs.drop(s.id, nil)
	}
	return bridge.MessageID(strconv.FormatUint(seq, 10)), nil
}

// newSession registers a fresh visitor.
func (p *Adapter) newSession() (*session, error) {
	id, err := randomID(16)
	if err != nil {
		return nil, err
	}
	token, err := randomID(32)
	if err != nil {
		return nil, err
	}
	s := newSession(id, token)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sessions[id] = s
	p.byToken[token] = s
	return s, nil
}

// resume finds the live session a reconnecting page holds the token of.
func (p *Adapter) resume(token string) *session {
	if token == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byToken[token]
}

// detached starts the grace period of a session whose connection closed. When it ends with no page
// back, the visitor is gone for good (a reload is a new visitor): the bridge is told at once, so they
// leave their room now rather than at the next message that fails to reach them.
func (p *Adapter) detached(s *session, conn uint64) {
	time.AfterFunc(p.opts.grace, func() {
		p.mu.Lock()
		if !s.expireIfIdleSince(conn) {
			p.mu.Unlock()
			return
		}
		delete(p.sessions, s.id)
		delete(p.byToken, s.token)
		p.blobs.drop(s.id, nil)
		h, ctx := p.h, p.runCtx
		p.mu.Unlock()
		if h != nil {
			h.HandleInbound(ctx, bridge.Inbound{From: s.addr(), Left: true})
		}
	})
}

func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("web: random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Handler serves the page, its static files and its WebSocket (/ws).
func (p *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", p.serveWS)
	mux.HandleFunc("GET /media/{id}", p.serveMedia)
	mux.HandleFunc("POST /media", p.serveUpload)
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /{$}", serveIndex)
	return p.hostGuard(securityHeaders(mux))
}
