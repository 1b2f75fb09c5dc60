// Package bridge is kumo's core: the commands people send, the purchase of rooms, and the relay of
// members' messages to each other across platforms. It talks to messengers only through Platform and
// to money only through Payments; it imports no messenger SDK and no Lightning library.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/patrickmn/go-cache"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/rooms"
)

// Config is the core's configuration: the `rooms:` section of kumo's YAML.
type Config struct {
	// PriceSat is a room's rent (rooms.price_sat, default 10,000). Zero makes rooms free: no invoice.
	PriceSat int64 `yaml:"price_sat" want:"a whole number of satoshis"`
	// InvoiceExpiry is how long an invoice may be paid (rooms.invoice_expiry, default 15m).
	InvoiceExpiry time.Duration `yaml:"invoice_expiry"`
	// Rooms: rooms.lifetime, rooms.max_members...
	Rooms rooms.Config `yaml:",inline"`
	// FloodRate and FloodBurst limit each person's messages (rooms.flood_rate per second, default 2,
	// in bursts of rooms.flood_burst, default 10). Past them kumo answers "slow down".
	FloodRate  float64 `yaml:"flood_rate"`
	FloodBurst int     `yaml:"flood_burst"`
	// MaxMediaBytes is the largest photo or file kumo relays (rooms.max_media_bytes, default 20 MiB);
	// platforms' own, smaller limits apply too.
	MaxMediaBytes int64 `yaml:"max_media_bytes"`
	// MediaMemory bounds the media bytes held in memory at once, over all rooms
	// (rooms.media_memory, default 256 MiB). Past it, senders of more media wait.
	MediaMemory int64 `yaml:"media_memory"`
	// Retry is how undeliverable messages are retried.
	Retry RetryPolicy `yaml:"-"`
	// Wipe erases a room's conversation from every member's chat when the room ends or they leave
	// it, where the platform allows (rooms.wipe, default true).
	Wipe bool `yaml:"wipe"`
	// ShutdownGrace bounds how long a stopping kumo keeps wiping rooms and delivering the "room is
	// gone" notices (rooms.shutdown_grace, default 30s); what is left then is logged as counts.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Reconnect is how a platform whose Run failed is run again: after Min, doubling up to Max.
	Reconnect Backoff `yaml:"-"`
	// SendAlone turns coalescing off: every relayed message is a send of its own, however long the
	// recipient's backlog (how kumo delivered before; benchmarks compare the two).
	SendAlone bool `yaml:"-"`
	// DelayWarning is how long a relayed message may wait behind a recipient's backlog before its
	// author is told that the room is busier than the platform lets kumo deliver (default 5s).
	DelayWarning time.Duration `yaml:"-"`
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time `yaml:"-"`
}

// RetryPolicy is how a message that could not be delivered is retried.
type RetryPolicy struct {
	// Attempts is how many times a message is tried when sending fails for a transient reason.
	Attempts int
	// Backoff is the first wait; it doubles each time up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// MaxRateLimitWait bounds the total time one message may spend waiting on a platform's 429s.
	MaxRateLimitWait time.Duration
}

// Backoff is a wait that doubles from Min up to Max.
type Backoff struct{ Min, Max time.Duration }

// DefaultConfig is the product's defaults.
func DefaultConfig() Config {
	return Config{
		PriceSat:      10_000,
		InvoiceExpiry: 15 * time.Minute,
		Rooms:         rooms.DefaultConfig(),
		FloodRate:     2,
		FloodBurst:    10,
		MaxMediaBytes: 20 << 20,
		MediaMemory:   256 << 20,
		Retry: RetryPolicy{
			Attempts:         6,
			Backoff:          500 * time.Millisecond,
			MaxBackoff:       30 * time.Second,
			MaxRateLimitWait: 10 * time.Minute,
		},
		Wipe:          true,
		ShutdownGrace: 30 * time.Second,
		Reconnect:     Backoff{Min: time.Second, Max: time.Minute},
		DelayWarning:  5 * time.Second,
	}
}

// Validate reports every value that cannot work, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.PriceSat < 0 {
		errs = append(errs, fmt.Errorf("rooms.price_sat must be 0 (free) or more, e.g. 10000, got %d", c.PriceSat))
	}
	if c.PriceSat > 0 && c.InvoiceExpiry < time.Second {
		errs = append(errs, fmt.Errorf("rooms.invoice_expiry must be at least 1s, e.g. 15m, got %s", c.InvoiceExpiry))
	}
	if c.FloodRate < 0 {
		errs = append(errs, fmt.Errorf("rooms.flood_rate must not be negative (0 turns the limit off), got %v", c.FloodRate))
	}
	if c.FloodBurst < 0 {
		errs = append(errs, fmt.Errorf("rooms.flood_burst must not be negative, got %d", c.FloodBurst))
	}
	if c.MaxMediaBytes < 1 {
		errs = append(errs, fmt.Errorf("rooms.max_media_bytes must be at least 1, e.g. 20971520 (20 MiB), got %d", c.MaxMediaBytes))
	} else if c.MediaMemory < c.MaxMediaBytes {
		errs = append(errs, fmt.Errorf("rooms.media_memory must be at least rooms.max_media_bytes (%d), so that one file fits, got %d", c.MaxMediaBytes, c.MediaMemory))
	}
	return errors.Join(append(errs, c.Rooms.Validate())...)
}

// MaxInbound is the longest text kumo takes from a person, in characters.
const MaxInbound = 10_000

// Limits on queues: what one person may have waiting to be handled, and what one recipient may have
// waiting to be delivered before kumo reports deliveries as failed instead of queueing without end.
const (
	inboxLimit  = 64
	outboxLimit = 4096
)

// Bridge is the core. It implements Handler for the platforms.
type Bridge struct {
	cfg       Config
	log       *slog.Logger
	pay       Payments
	store     *rooms.Store
	platforms map[string]Platform
	health    *health
	now       func() time.Time

	inbox *lanes[Inbound]
	// mediaMem is the budget of media bytes in memory (Config.MediaMemory).
	mediaMem *semaphore.Weighted
	// mediaHeld and mediaPeak are the media bytes held now and at most (Stats).
	mediaHeld, mediaPeak atomic.Int64
	outbox               *lanes[delivery]
	// ephemeral holds per-person flood limiters and which invoices were already handled.
	ephemeral *cache.Cache
	payEvents chan PaymentEvent

	// sendCtx is what deliveries run under: it outlives Run's ctx by the shutdown grace, so members
	// are still told their rooms are gone.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	stopping   atomic.Bool
	// purchaseMu makes "record a purchase" and "an event for an unknown invoice" mutually atomic, so
	// an invoice reported cancelled before its purchase was recorded is never left waiting.
	purchaseMu sync.Mutex

	stats struct {
		relayed, delivered, failed, invoicesCreated, invoicesPaid, invoicesExpired atomic.Uint64
		erased, eraseFailed, refsDropped                                           atomic.Uint64
		edited, unsent, reacted                                                    atomic.Uint64
		throttled                                                                  atomic.Uint64
	}
	// wipeInFlight counts ids a running wipe has taken and not yet erased or given up.
	wipeInFlight atomic.Int64
	mu           sync.Mutex
	observer     func(DeliveryEvent) // tests and benchmarks only
}

// DeliveryEvent describes one finished delivery, for instrumentation.
type DeliveryEvent struct {
	To       Addr
	Kind     Kind
	Queued   time.Time // when the bridge queued it
	Sent     time.Time
	Err      error // nil when delivered
	Attempts int
	// Combined is how many relayed messages the send carried (1 when the message went alone).
	Combined int
}

type delivery struct {
	to     Addr
	msg    Message
	img    *Image
	media  *mediaPart // a photo, file, voice note... (media.go)
	sender string     // member key of a relayed message's author, to tell them if it fails
	queued time.Time
	// carried is what a combined send stands for (coalesce.go), each with its own sender and time.
	carried []delivery
	// class ranks the send for the platform's bot-wide budget (fairshare.go).
	class SendClass
	// trace is where the ids of what this delivery shows are recorded for the wipe (zero: nowhere).
	trace rooms.Trace
	// wipe, when set, makes this a wipe of the recipient's chat instead of a send.
	wipe *wipeJob
	// op, when set, makes this an edit, unsend or reaction on the recipient's copies (convo.go).
	op *convoOp
	// said, for a relayed message, is its key in the room's conversation map (room), where the ids
	// this delivery shows are recorded as the recipient's copy; replyTo is the key of the message
	// it replies to, whose copy in the recipient's chat is looked up when it is sent.
	room, said, replyTo string
}

// New builds the core. pay may be nil only when rooms are free (PriceSat 0).
func New(cfg Config, pay Payments, log *slog.Logger, platforms ...Platform) (*Bridge, error) {
	d := DefaultConfig()
	if cfg.Retry == (RetryPolicy{}) {
		cfg.Retry = d.Retry
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = d.ShutdownGrace
	}
	if cfg.InvoiceExpiry == 0 {
		cfg.InvoiceExpiry = d.InvoiceExpiry
	}
	if cfg.MaxMediaBytes == 0 {
		cfg.MaxMediaBytes = d.MaxMediaBytes
	}
	if cfg.MediaMemory == 0 {
		cfg.MediaMemory = max(d.MediaMemory, cfg.MaxMediaBytes)
	}
	if cfg.Reconnect.Min <= 0 {
		cfg.Reconnect.Min = d.Reconnect.Min
	}
	cfg.Reconnect.Max = max(cfg.Reconnect.Max, cfg.Reconnect.Min)
	if cfg.DelayWarning == 0 {
		cfg.DelayWarning = d.DelayWarning
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PriceSat > 0 && pay == nil {
		return nil, errors.New("bridge: rooms have a price but there is no payment backend")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bridge{
		cfg:       cfg,
		log:       log,
		pay:       pay,
		platforms: make(map[string]Platform, len(platforms)),
		now:       cfg.Now,
		// The janitor sweeps often: flood limiters of one-message identities expire within seconds.
		ephemeral: cache.New(10*time.Minute, 10*time.Second),
		payEvents: make(chan PaymentEvent, 256),
	}
	if b.now == nil {
		b.now = time.Now
	}
	if cfg.Rooms.Now == nil {
		cfg.Rooms.Now = b.now // the guess limits run on the core's clock
	}
	var names []string
	for _, p := range platforms {
		if _, dup := b.platforms[p.Name()]; dup {
			return nil, fmt.Errorf("bridge: two platforms are named %q", p.Name())
		}
		b.platforms[p.Name()] = p
		names = append(names, p.Name())
	}
	b.health = newHealth(b.now, names)
	store, err := rooms.New(cfg.Rooms, roomEvents{b})
	if err != nil {
		return nil, err
	}
	b.store = store
	b.sendCtx, b.cancelSend = context.WithCancel(context.Background())
	b.mediaMem = semaphore.NewWeighted(cfg.MediaMemory)
	b.inbox = newLanes(inboxLimit, b.handle)
	b.outbox = newBatchLanes(outboxLimit, b.deliverBatch)
	b.outbox.urgent, b.outbox.take = urgentDelivery, b.take
	return b, nil
}

// Store exposes the room state (read-mostly: tests, metrics).
func (b *Bridge) Store() *rooms.Store { return b.store }

// ObserveDeliveries registers f to be told of every finished delivery (benchmarks, tests).
func (b *Bridge) ObserveDeliveries(f func(DeliveryEvent)) {
	b.mu.Lock()
	b.observer = f
	b.mu.Unlock()
}

// Stats are the core's counters, for metrics. None of them carries a user, a room password or text.
type Stats struct {
	Rooms, Members                                 int
	Relayed, Delivered, DeliveriesFailed           uint64
	InvoicesCreated, InvoicesPaid, InvoicesExpired uint64
	PendingDeliveries                              int
	// MediaBytes and MediaPeak are the media bytes held in memory now and at most since the start.
	MediaBytes, MediaPeak int64
	// QueuedMessages is how many messages wait in recipients' queues (PendingDeliveries counts
	// the recipients).
	QueuedMessages int
	// Erased and EraseFailed count messages the wipe deleted and could not delete; RefsDropped those
	// it never knew of because their room's record was full (rooms.max_refs).
	Erased, EraseFailed, RefsDropped uint64
	// JoinAttemptsThrottled counts passwords, invites, creator keys and /newroom passwords that a
	// guess limit (person, origin or global) answered "wait" without looking at them.
	JoinAttemptsThrottled uint64
}

// Stats returns the current counters.
func (b *Bridge) Stats() Stats {
	r, m := b.store.Counts()
	return Stats{
		Rooms: r, Members: m,
		Relayed:           b.stats.relayed.Load(),
		Delivered:         b.stats.delivered.Load(),
		DeliveriesFailed:  b.stats.failed.Load(),
		InvoicesCreated:   b.stats.invoicesCreated.Load(),
		InvoicesPaid:      b.stats.invoicesPaid.Load(),
		InvoicesExpired:   b.stats.invoicesExpired.Load(),
		PendingDeliveries: b.outbox.active(),
		MediaBytes:        b.mediaHeld.Load(),
		MediaPeak:         b.mediaPeak.Load(),
		QueuedMessages:    b.outbox.queued(),
		Erased:            b.stats.erased.Load(),
		EraseFailed:       b.stats.eraseFailed.Load(),
		RefsDropped:       b.stats.refsDropped.Load(),

		JoinAttemptsThrottled: b.stats.throttled.Load(),
	}
}

// Run runs every platform and the payment backend, and relays until ctx ends. Then it closes every
// room, telling the members (for at most ShutdownGrace), stops the platforms and returns. It returns
// an error when a platform or the payment backend fails for good.
func (b *Bridge) Run(ctx context.Context) error {
	// Platforms and payments outlive ctx until the shutdown notices are out.
	partsCtx, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopParts()
	g, gctx := errgroup.WithContext(partsCtx)
	for name, p := range b.platforms {
		g.Go(func() error { return b.supervise(gctx, name, p) })
	}
	if b.pay != nil {
		g.Go(func() error {
			err := b.pay.Run(gctx, b.onPayment)
			if err != nil && gctx.Err() == nil {
				return fmt.Errorf("payments: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		b.paymentLoop(gctx)
		return nil
	})
	b.log.Info("kumo bridge running", "platforms", len(b.platforms), "price_sat", b.cfg.PriceSat,
		"room_lifetime", b.cfg.Rooms.Lifetime.String())

	select {
	case <-ctx.Done():
	case <-gctx.Done():
	}
	b.stopping.Store(true)
	grace := make(chan struct{})
	timer := time.AfterFunc(b.cfg.ShutdownGrace, func() { close(grace) })
	// What people sent before the stop finishes being handled first (new messages are refused now):
	// a /newroom's own message is recorded with its purchase only once it is handled, and must be
	// known before the purchase's wipe below.
	b.inbox.wait(grace)
	closed := b.store.CloseAll()
	// Invoices nobody paid are traces too; they can no longer open a room.
	for _, p := range b.store.Purchases() {
		b.wipePending(addrOf(p.Creator))
	}
	b.log.Info("kumo stopping", "rooms_closed", closed)
	if !b.outbox.wait(grace) {
		refs, chats := b.store.RefsLeft()
		// Counts only: which rooms or people these were must not outlive them.
		b.log.Warn("shutdown grace ran out with deliveries pending", "recipients", b.outbox.active(),
			"messages_not_erased", refs+int(b.wipeInFlight.Load()), "chats_not_wiped", chats)
	}
	timer.Stop()
	b.cancelSend()
	stopParts()
	err := g.Wait()
	b.store.Close()
	b.ephemeral.Flush()
	return err
}

// HandleInbound queues what a person sent; their messages are handled in order, one at a time.
func (b *Bridge) HandleInbound(ctx context.Context, in Inbound) {
	if in.From.Platform == "" || in.From.User == "" {
		return
	}
	if b.stopping.Load() {
		b.send(in.From, Message{Kind: KindReply, Text: "kumo is shutting down. Nothing was relayed."}, nil, "")
		return
	}
	if in.Left {
		// Nothing to refuse or slow down: it only ever takes someone out. A full inbox (a flood just
		// before the page closed) must not keep a ghost in the room, so it waits its turn elsewhere.
		if _, _, ok := b.inbox.push(in.From.Key(), in); !ok {
			go b.left(in.From)
		}
		return
	}
	if !b.allow(in.From) {
		return
	}
	if _, _, ok := b.inbox.push(in.From.Key(), in); !ok {
		b.send(in.From, Message{Kind: KindReply, Text: "⏳ You are sending faster than I can keep up: that message was not relayed."}, nil, "")
	}
}

// allow applies the flood limit, telling the person once per burst that they were too fast.
func (b *Bridge) allow(from Addr) bool {
	if b.cfg.FloodRate == 0 {
		return true
	}
	key := from.Key()
	// A limiter left alone until its bucket is full again is no different from a new one, so it is
	// kept only that long (refreshed at every message): identities that cost nothing (a new web
	// socket, a new Matrix account per message) then hold seconds of memory each, not minutes.
	burst := max(b.cfg.FloodBurst, 1)
	idle := time.Duration(float64(burst)/b.cfg.FloodRate*float64(time.Second)) + time.Second
	v, ok := b.ephemeral.Get("flood:" + key)
	if !ok {
		// Add, not Set: of two first messages arriving at once, both must use the same limiter.
		_ = b.ephemeral.Add("flood:"+key, rate.NewLimiter(rate.Limit(b.cfg.FloodRate), burst), idle)
		v, _ = b.ephemeral.Get("flood:" + key)
	}
	lim := v.(*rate.Limiter)
	b.ephemeral.Set("flood:"+key, lim, idle)
	if lim.Allow() {
		return true
	}
	if b.ephemeral.Add("floodwarned:"+key, true, 10*time.Second) == nil {
		b.send(from, Message{Kind: KindReply, Text: "⏳ Slow down: you are sending too fast. Messages are not relayed until you do."}, nil, "")
	}
	return false
}

func addrOf(m rooms.Member) Addr { return Addr{Platform: m.Platform, User: m.User, Chat: m.Chat} }

func memberOf(a Addr) rooms.Member {
	return rooms.Member{Platform: a.Platform, User: a.User, Chat: a.Chat}
}

// handle runs in the sender's lane.
func (b *Bridge) handle(_ string, in Inbound) {
	ctx := b.sendCtx
	if in.Left {
		b.left(in.From)
		return
	}
	if in.Action != ActionPost {
		b.converse(in)
		return
	}
	// The person's own message belongs to their room (recorded before it is handled, so that a
	// /leave or /destroy is itself erased, and a photo that is not relayed still leaves with the
	// room), or to the room or purchase it starts.
	room, me, err := b.store.RoomOf(in.From.Key())
	if err == nil {
		b.keepOwn(ctx, in, rooms.Trace{Room: room.ID, Member: me.Key()})
	} else {
		defer b.keepOwnAfter(ctx, in)
	}
	if len(in.Attachments) > 0 {
		b.handleMedia(ctx, in)
		return
	}
	if in.NonText {
		b.reply(in.From, "That cannot be relayed (text, photos, files, voice notes and videos can; not this kind of message): it was not sent to the room.")
		return
	}
	text := strings.ToValidUTF8(in.Text, "\uFFFD")
	if strings.TrimSpace(text) == "" {
		return
	}
	if n := utf8.RuneCountInString(text); n > MaxInbound {
		b.reply(in.From, fmt.Sprintf("That message is too long (%d characters; the limit is %d). Nothing was relayed.", n, MaxInbound))
		return
	}
	if name, args, ok := ParseCommand(text); ok {
		if name == "unsend" {
			b.unsendCommand(in)
			return
		}
		b.command(ctx, in, name, args)
		return
	}
	if err == nil {
		b.relay(room, me, in, text)
		return
	}
	// Someone in no room: a creator key is a reclaim, a message that could be a password a join.
	if rooms.LooksLikeCreatorKey(text) {
		b.reclaim(in, text)
		return
	}
	if rooms.CheckPassword(text) == nil && !strings.Contains(strings.TrimSpace(text), "\n") {
		b.join(in, text, true)
		return
	}
	b.reply(in.From, "You are not in a room. Send /newroom to open one, or send a room's password to join it. /help lists everything.")
}

// relay sends a member's text to every other member, split for each one's platform. It is mapped
// in the room's conversation, so that replies, edits, unsend and reactions reach every copy; a
// reply goes to each recipient as a reply to their own copy of the original (looked up as it is
// sent), with a quote of it for those who have none.
func (b *Bridge) relay(room rooms.Room, me rooms.Member, in Inbound, text string) {
	b.stats.relayed.Add(1)
	var key, replyTo, quote string
	if in.ID != "" {
		key, _ = b.store.Say(room.ID, me.Key(), string(in.ID), me.Nick, text)
	}
	if in.ReplyTo != "" {
		if orig, ok := b.store.Find(room.ID, me.Key(), string(in.ReplyTo)); ok {
			replyTo, quote = orig.Key, quoteOf(orig)
		}
	}
	var cache splitCache
	for _, m := range room.Members {
		if m.Key() == me.Key() {
			continue
		}
		parts := cache.get(b, m.Platform, Message{Kind: KindRelay, From: me.Nick, Text: text, Quote: quote})
		for i, p := range parts {
			d := delivery{to: addrOf(m), msg: p, sender: me.Key(), queued: b.now(), trace: b.roomTrace(room.ID, addrOf(m)), room: room.ID, said: key}
			if i == 0 {
				d.replyTo = replyTo
			} else {
				d.msg.Quote = ""
			}
			b.push(d)
		}
	}
}

// splitFor cuts m's text to fit the platform's limits; each piece keeps m's kind and sender.
func (b *Bridge) splitFor(platform string, m Message) []Message {
	p, ok := b.platforms[platform]
	if !ok {
		return []Message{m}
	}
	lim := p.Limits()
	if lim.MaxText <= 0 {
		return []Message{m}
	}
	budget := lim.MaxText - lim.Overhead
	if m.Kind == KindRelay {
		budget -= lim.Len(m.From + ": ")
	} else if m.Kind == KindNotice {
		budget -= lim.Len(NoticeMark)
	}
	if m.Code != "" {
		budget -= lim.Len(m.Code) + 1 // shown after the last piece, on its own line
	}
	if m.Quote != "" {
		budget -= lim.Len(m.Quote) + 1 // shown before the first piece where there is no native reply
	}
	texts := Split(m.Text, budget, lim.Len)
	if len(texts) == 1 {
		return []Message{m}
	}
	out := make([]Message, len(texts))
	for i, t := range texts {
		out[i] = m
		out[i].Text, out[i].Part, out[i].Parts = t, i+1, len(texts)
		if i < len(texts)-1 {
			out[i].Code = "" // shown once, after the last piece
		}
	}
	return out
}

// reply answers the person; an answer given while they are in a room belongs to the room (its wipe
// erases it).
func (b *Bridge) reply(to Addr, text string) {
	t := b.traceOf(to)
	for _, m := range b.splitFor(to.Platform, Message{Kind: KindReply, Text: text}) {
		b.sendTraced(t, to, m, nil, "")
	}
}

// replyRoom answers with the person's room state attached.
func (b *Bridge) replyRoom(to Addr, m Message, st *RoomState) {
	m.Kind, m.Room = KindReply, st
	t := b.traceOf(to)
	for _, part := range b.splitFor(to.Platform, m) {
		b.sendTraced(t, to, part, nil, "")
	}
}

func stateOf(r rooms.Room, me rooms.Member) *RoomState {
	return &RoomState{EndsAt: r.ExpiresAt, Members: len(r.Members), Nick: me.Nick, Creator: r.Creator == me.Key()}
}

var closedState = &RoomState{Closed: true}

// noticeAll tells every member of the room except the one with key skip; closed says the room has
// ended for them.
func (b *Bridge) noticeAll(r rooms.Room, skip, text string, closed bool) {
	for _, to := range r.Members {
		if to.Key() == skip {
			continue
		}
		st := closedState
		if !closed {
			st = stateOf(r, to)
		}
		t := rooms.Trace{}
		if !closed {
			t = b.roomTrace(r.ID, addrOf(to))
		}
		for _, m := range b.splitFor(to.Platform, Message{Kind: KindNotice, Text: text, Room: st}) {
			b.sendTraced(t, addrOf(to), m, nil, "")
		}
	}
}

// send queues one message for one person, behind what they are already due.
func (b *Bridge) send(to Addr, m Message, img *Image, sender string) {
	b.sendTraced(rooms.Trace{}, to, m, img, sender)
}

// sendTraced queues a message whose ids are recorded in t for the wipe.
func (b *Bridge) sendTraced(t rooms.Trace, to Addr, m Message, img *Image, sender string) {
	b.push(delivery{to: to, msg: m, img: img, sender: sender, queued: b.now(), trace: t})
}

// push queues d in its recipient's lane, and warns its sender when the lane falls behind.
func (b *Bridge) push(d delivery) {
	head, waiting, ok := b.outbox.push(d.to.Platform+"\x1f"+d.to.Chat, d)
	if !ok {
		d.media.done()
		b.failed(d, 0, errors.New("recipient's queue is full"))
		return
	}
	b.backPressure(d, head, waiting)
}

// deliver runs in the recipient's lane: it sends, and retries what can be retried, in order. d may
// be a combined send (coalesce.go): whatever happens to it happens to every message it carries.
func (b *Bridge) deliver(key string, d delivery) {
	defer d.media.done()
	if d.wipe != nil {
		b.wipe(key, d)
		return
	}
	if d.op != nil {
		if d.trace.Room == "" || b.store.Tracing(d.trace) {
			b.runOp(key, d)
		} else if d.op.action == ActionUnsend {
			// Their chat was wiped already: nothing to delete, but the map waits for every member.
			b.store.TakeCopies(d.op.room, d.op.key, d.to.Key())
		}
		return
	}
	if d.replyTo != "" {
		if said, ok := b.store.Get(d.room, d.replyTo); ok {
			if ids := said.Copies[d.to.Key()]; len(ids) > 0 {
				d.msg.ReplyTo = MessageID(ids[0])
			}
		}
	}
	if d.trace.Room != "" && !b.store.Tracing(d.trace) {
		// The member's wipe already ran (they left, or the room ended while this was queued):
		// nothing of the room may appear after its final notice.
		return
	}
	p, ok := b.platforms[d.to.Platform]
	if !ok {
		b.failed(d, 0, fmt.Errorf("no platform %q", d.to.Platform))
		return
	}
	pol := b.cfg.Retry
	backoff := pol.Backoff
	ctx := WithSendClass(b.sendCtx, d.class)
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		var (
			ids []MessageID
			err error
		)
		if d.media != nil {
			ids, err = b.sendMedia(ctx, p, d)
		} else if d.img != nil {
			ids, err = p.SendImage(ctx, d.to, *d.img, d.msg)
		} else {
			var id MessageID
			id, err = p.SendText(ctx, d.to, d.msg)
			if id != "" {
				ids = []MessageID{id}
			}
		}
		// A combined send's id stands for every message it carries: recorded once for each trace
		// they belong to (the recipient's, as a rule), so the wipe deletes it once.
		// Each carried message has it as its copy (the conversation map marks it combined).
		for i, one := range d.each() {
			first := i == 0 || !slices.ContainsFunc(d.each()[:i], func(o delivery) bool { return o.trace == one.trace })
			b.shownAs(one, ids, first)
		}
		b.combined(d, ids)
		if err == nil {
			b.stats.delivered.Add(uint64(len(d.each())))
			b.observe(d, attempt, nil)
			return
		}
		var rl *RateLimitError
		switch {
		case errors.Is(err, ErrRecipientGone):
			b.observe(d, attempt, err)
			b.gone(d.to, err)
			return
		case errors.Is(err, ErrRejected) && len(d.carried) > 0:
			// The platform refused the combination (it measured it differently): what it carries
			// still goes, each alone, rather than fail for being combined.
			for _, one := range d.carried {
				b.deliver(key, one)
			}
			return
		case errors.Is(err, ErrRejected):
			b.failed(d, attempt, err)
			return
		case errors.As(err, &rl):
			if waited+rl.RetryAfter > pol.MaxRateLimitWait {
				b.failed(d, attempt, err)
				return
			}
			waited += rl.RetryAfter
			if !b.sleep(rl.RetryAfter) {
				b.failed(d, attempt, err)
				return
			}
			attempt-- // a platform's "wait" is not a failure: it does not use up an attempt
		default:
			if attempt >= pol.Attempts || b.sendCtx.Err() != nil {
				b.failed(d, attempt, err)
				return
			}
			if !b.sleep(backoff) {
				b.failed(d, attempt, err)
				return
			}
			backoff = min(backoff*2, pol.MaxBackoff)
		}
	}
}

func (b *Bridge) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.sendCtx.Done():
		return false
	}
}

func (b *Bridge) observe(d delivery, attempts int, err error) {
	b.mu.Lock()
	f := b.observer
	b.mu.Unlock()
	if f == nil {
		return
	}
	sent, all := b.now(), d.each()
	for _, one := range all {
		f(DeliveryEvent{To: one.to, Kind: one.msg.Kind, Queued: one.queued, Sent: sent, Err: err, Attempts: attempts, Combined: len(all)})
	}
}

// failed reports a message that could not be delivered: in the log (without its text), in the
// metrics, and to its author.
func (b *Bridge) failed(d delivery, attempts int, err error) {
	if len(d.carried) > 0 {
		for _, one := range d.carried {
			b.failed(one, attempts, err)
		}
		return
	}
	b.stats.failed.Add(1)
	b.observe(d, attempts, err)
	b.log.Warn("delivery failed", "platform", d.to.Platform, "kind", d.msg.Kind.String(), "attempts", attempts, "err", err)
	if d.sender == "" {
		return
	}
	room, author, rerr := b.store.RoomOf(d.sender)
	if rerr != nil {
		return
	}
	nick := "a member"
	for _, m := range room.Members {
		if m.Platform == d.to.Platform && m.Chat == d.to.Chat {
			nick = m.Nick
		}
	}
	text := fmt.Sprintf("⚠️ A message of yours could not be delivered to %s.", nick)
	if d.media != nil && errors.Is(err, ErrTooBig) {
		text = fmt.Sprintf("📎 Your %s was too big for %s's messenger: they did not get it.", kindName(d.media.kind), nick)
	}
	// A failure report is never itself reported, so this cannot loop.
	b.sendTraced(b.roomTrace(room.ID, addrOf(author)), addrOf(author), Message{Kind: KindReply, Text: text}, nil, "")
}

// gone removes someone the platform can no longer reach.
func (b *Bridge) gone(to Addr, err error) {
	b.log.Info("member unreachable, removing", "platform", to.Platform, "err", err)
	room, m, lerr := b.store.Leave(to.Key())
	if lerr != nil {
		return
	}
	// Their chat cannot be reached, so it cannot be wiped either: forget what it shows.
	b.store.TakeRefs(rooms.Trace{Room: room.ID, Member: m.Key()})
	b.noticeAll(room, "", fmt.Sprintf("%s left (they can no longer be reached). %s.", m.Nick, members(len(room.Members))), false)
}

// left takes out someone their platform says is gone for good (Inbound.Left).
func (b *Bridge) left(from Addr) {
	room, m, err := b.store.Leave(from.Key())
	if err != nil {
		return // in no room (already removed, or their seat moved to another chat)
	}
	b.log.Info("member gone from their platform, removing", "platform", from.Platform)
	// Their chat is gone with them: nothing there to wipe, so forget what it showed.
	b.store.TakeRefs(rooms.Trace{Room: room.ID, Member: m.Key()})
	b.noticeAll(room, "", fmt.Sprintf("%s left. %s.", m.Nick, members(len(room.Members))), false)
}

func members(n int) string {
	if n == 1 {
		return "1 member"
	}
	return fmt.Sprintf("%d members", n)
}

// roomEvents turns the store's timers into notices.
type roomEvents struct{ b *Bridge }

func (e roomEvents) RoomEnding(r rooms.Room, left time.Duration) {
	e.b.noticeAll(r, "", fmt.Sprintf("This room self-destructs in %s.", human(left)), false)
}

func (e roomEvents) RoomClosed(r rooms.Room, why rooms.Reason) {
	var text string
	switch why {
	case rooms.Destroyed:
		text = "💥 The creator destroyed this room. Everything in it is gone; nothing you send is relayed any more."
	case rooms.Shutdown:
		text = "💥 kumo is shutting down, so this room is gone. Nothing you send is relayed any more."
	default:
		text = "💥 This room has self-destructed. Everything in it is gone; nothing you send is relayed any more."
	}
	e.b.log.Info("room closed", "room", r.ID[:8], "why", why.String(), "members", len(r.Members))
	if e.b.cfg.Wipe {
		for _, m := range r.Members {
			e.b.wipeChat(addrOf(m), rooms.Trace{Room: r.ID, Member: m.Key()}, closingWhy(why))
		}
		return
	}
	e.b.noticeAll(r, "", text, true)
}
