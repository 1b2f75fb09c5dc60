package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/rooms"
)

const wait = 10 * time.Second

type harness struct {
	b    *bridge.Bridge
	dev  *lightning.Dev
	tg   *bridgetest.Platform
	dc   *bridgetest.Platform
	logs *bridgetest.LogBuffer
	stop func()
}

// start runs a core with two fake platforms ("tg" counts like Telegram, "dc" is short, like Discord)
// and the development payment backend.
func start(t *testing.T, mutate func(*bridge.Config)) *harness {
	t.Helper()
	cfg := testConfig(mutate)
	logs, log := debugLog()
	h := &harness{
		dev:  lightning.NewDev(log),
		tg:   bridgetest.New("tg", bridge.Limits{MaxText: 4096}),
		dc:   bridgetest.New("dc", bridge.Limits{MaxText: 2000}),
		logs: logs,
	}
	h.run(t, cfg, log, h.tg, h.dc)
	return h
}

// testConfig is the default core config with quick retries and no flood limit, then each mutation
// (nil ones skipped) in turn.
func testConfig(mutates ...func(*bridge.Config)) bridge.Config {
	cfg := bridge.DefaultConfig()
	cfg.Retry = bridge.RetryPolicy{Attempts: 3, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxRateLimitWait: time.Minute}
	cfg.FloodRate = 0
	for _, m := range mutates {
		if m != nil {
			m(&cfg)
		}
	}
	return cfg
}

// free makes rooms free (no invoice before a room opens).
func free(cfg *bridge.Config) { cfg.PriceSat = 0 }

// debugLog is a logger that keeps every line, debug ones included, in the returned buffer.
func debugLog() (*bridgetest.LogBuffer, *slog.Logger) {
	logs := &bridgetest.LogBuffer{}
	return logs, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// run builds the core over ps with h's dev backend and runs it until the test ends (or h.stop).
func (h *harness) run(t *testing.T, cfg bridge.Config, log *slog.Logger, ps ...bridge.Platform) {
	t.Helper()
	b, err := bridge.New(cfg, h.dev, log, ps...)
	if err != nil {
		t.Fatal(err)
	}
	h.b = b
	h.stop = bridgetest.Run(t, b)
}

// aliceAndBob has alice (on tg) buy a room and bob (on dc) join it with its password, which it
// returns with their addresses.
func (h *harness) aliceAndBob(t *testing.T) (alice, bob bridge.Addr, password string) {
	t.Helper()
	alice, bob = h.tg.User("alice"), h.dc.User("bob")
	password = h.openRoom(t, h.tg, alice, "")
	h.dc.Say(t, bob, password)
	h.dc.WaitText(t, bob.Chat, "You joined the room")
	return alice, bob, password
}

// openRoom has the user buy a room (paying through the dev backend) and returns its password.
func (h *harness) openRoom(t *testing.T, p *bridgetest.Platform, creator bridge.Addr, password string) string {
	t.Helper()
	cmd := "/newroom"
	if password != "" {
		cmd += " " + password
	}
	before := len(p.Messages(creator.Chat))
	p.Say(t, creator, cmd)
	var inv *bridge.Invoice
	free := false
	p.WaitFor(t, creator.Chat, wait, "an invoice (or a free room)", func(ms []bridge.Message) bool {
		for _, m := range ms[before:] {
			if m.Kind == bridge.KindInvoice {
				inv = m.Invoice
				return true
			}
			free = free || strings.Contains(m.Text, "Your room is open")
		}
		return free
	})
	if !free {
		if err := h.dev.Pay(context.Background(), inv.ID); err != nil {
			t.Fatal(err)
		}
	}
	open := p.WaitText(t, creator.Chat, "Your room is open")
	if password != "" && open.Code != password {
		t.Fatalf("room opened with password %q, want %q", open.Code, password)
	}
	return open.Code
}

// waitInvoice waits until the chat was shown an invoice and returns the latest one.
func waitInvoice(t *testing.T, p *bridgetest.Platform, chat string) *bridge.Invoice {
	t.Helper()
	var inv *bridge.Invoice
	p.WaitFor(t, chat, wait, "an invoice", func(ms []bridge.Message) bool {
		inv = lastInvoice(ms)
		return inv != nil
	})
	return inv
}

func lastInvoice(ms []bridge.Message) *bridge.Invoice {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Invoice != nil {
			return ms[i].Invoice
		}
	}
	return nil
}

// relays is what the chat was relayed, one message per relayed message (combined sends unpacked).
func relays(ms []bridge.Message) []bridge.Message { return bridgetest.Relayed(ms) }

func hasRelay(from, text string) func([]bridge.Message) bool {
	return func(ms []bridge.Message) bool {
		for _, m := range relays(ms) {
			if m.From == from && m.Text == text {
				return true
			}
		}
		return false
	}
}

func nickOf(t *testing.T, h *harness, a bridge.Addr) string {
	t.Helper()
	_, m, err := h.b.Store().RoomOf(a.Key())
	if err != nil {
		t.Fatalf("%s is in no room: %v", a.User, err)
	}
	return m.Nick
}

func TestPaidFlowAcrossPlatforms(t *testing.T) {
	const lifetime = 3 * time.Second
	h := start(t, func(c *bridge.Config) {
		c.Rooms.Lifetime = lifetime
		c.Rooms.Warnings = []time.Duration{2 * time.Second}
	})
	// Ids with digits: a generated password (letters only) can spell "bob", never "bob17".
	alice, bob := h.tg.User("alice42"), h.dc.User("bob17")

	h.tg.Say(t, alice, "/newroom")
	inv := h.tg.WaitFor(t, alice.Chat, wait, "an invoice", func(ms []bridge.Message) bool {
		return len(ms) > 0 && ms[len(ms)-1].Kind == bridge.KindInvoice
	})[0]
	if inv.Invoice.AmountSat != 10_000 || inv.Code != inv.Invoice.BOLT11 || !strings.HasPrefix(inv.Invoice.URI, "lightning:") {
		t.Fatalf("invoice message: %+v", inv)
	}
	if imgs := h.tg.Images(alice.Chat); len(imgs) != 1 || !bytes.HasPrefix(imgs[0].PNG, []byte("\x89PNG")) {
		t.Fatalf("want the QR code as a PNG, got %d images", len(imgs))
	}
	if _, _, err := h.b.Store().RoomOf(alice.Key()); err == nil {
		t.Fatal("the room opened before it was paid")
	}
	if err := h.dev.Pay(context.Background(), inv.Invoice.ID); err != nil {
		t.Fatal(err)
	}
	open := h.tg.WaitText(t, alice.Chat, "Your room is open")
	password := open.Code
	if open.Room == nil || open.Room.Closed || open.Room.Members != 1 || open.Room.EndsAt.IsZero() {
		t.Fatalf("the open reply carries room state %+v", open.Room)
	}
	if n := len(strings.ReplaceAll(password, "-", "")); n < 20 {
		t.Fatalf("generated password %q is too short", password)
	}
	waitState(t, h.dev, inv.Invoice.ID, "SETTLED")

	// Bob, on another platform, joins by sending the bare password.
	h.dc.Say(t, bob, password)
	h.dc.WaitText(t, bob.Chat, "You joined the room")
	aliceNick, bobNick := nickOf(t, h, alice), nickOf(t, h, bob)
	h.tg.WaitText(t, alice.Chat, bobNick+" joined")

	h.tg.Say(t, alice, "hello 👋 from 東京 🏳️‍🌈")
	h.dc.WaitFor(t, bob.Chat, wait, "alice's message", hasRelay(aliceNick, "hello 👋 from 東京 🏳️‍🌈"))
	h.dc.Say(t, bob, "hi *there* <b>")
	h.tg.WaitFor(t, alice.Chat, wait, "bob's message", hasRelay(bobNick, "hi *there* <b>"))

	// Nobody ever sees another's platform id.
	for _, m := range append(h.tg.Messages(alice.Chat), h.dc.Messages(bob.Chat)...) {
		if s := m.String(); strings.Contains(s, alice.User) || strings.Contains(s, bob.User) {
			t.Fatalf("a message reveals a platform user: %q", s)
		}
	}

	h.dc.WaitText(t, bob.Chat, "self-destructs in 2s")
	h.tg.WaitText(t, alice.Chat, "has self-destructed")
	if end := h.dc.WaitText(t, bob.Chat, "has self-destructed"); end.Room == nil || !end.Room.Closed {
		t.Fatalf("the end notice carries room state %+v", end.Room)
	}

	// Nothing relays after the end.
	h.tg.Say(t, alice, "anyone there?")
	h.tg.WaitText(t, alice.Chat, "You are not in a room")
	for _, m := range h.dc.Messages(bob.Chat) {
		if strings.Contains(m.Text, "anyone there") {
			t.Fatal("a message was relayed after the room ended")
		}
	}
}

func waitState(t *testing.T, d *lightning.Dev, id, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got, err := d.State(id)
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice is %s, want %s", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRoomLifetime(t *testing.T) {
	const lifetime = 2 * time.Second
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0; c.Rooms.Lifetime = lifetime; c.Rooms.Warnings = nil })
	alice := h.tg.User("alice")
	h.tg.Say(t, alice, "/newroom")
	h.tg.WaitText(t, alice.Chat, "Your room is open")
	room, _, err := h.b.Store().RoomOf(alice.Key())
	if err != nil {
		t.Fatal(err)
	}
	if got := room.ExpiresAt.Sub(room.OpenedAt); got != lifetime {
		t.Fatalf("room lives %s, want %s", got, lifetime)
	}
	h.tg.WaitText(t, alice.Chat, "has self-destructed")
	if now := time.Now(); now.Before(room.ExpiresAt) {
		t.Fatalf("room ended %s before its time", room.ExpiresAt.Sub(now))
	}
	if _, _, err := h.b.Store().RoomOf(alice.Key()); !errors.Is(err, rooms.ErrNotInRoom) {
		t.Fatalf("the membership outlived the room: %v", err)
	}
	if r, m := h.b.Store().Counts(); r != 0 || m != 0 {
		t.Fatalf("counts after expiry: %d rooms, %d members", r, m)
	}
}

func TestWrongPasswordsAreThrottled(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, mallory := h.tg.User("alice"), h.dc.User("mallory")
	password := h.openRoom(t, h.tg, alice, "purple elephants dance at noon")
	for i := range 5 {
		h.dc.Say(t, mallory, fmt.Sprintf("/join wrong guess number %d", i))
	}
	h.dc.WaitFor(t, mallory.Chat, wait, "five refusals", func(ms []bridge.Message) bool {
		n := 0
		for _, m := range ms {
			if strings.Contains(m.Text, "No live room has that password") {
				n++
			}
		}
		return n == 5
	})
	h.dc.Say(t, mallory, "/join "+password)
	h.dc.WaitText(t, mallory.Chat, "Too many wrong passwords. Try again in 1")
	if _, _, err := h.b.Store().RoomOf(mallory.Key()); err == nil {
		t.Fatal("a throttled person joined")
	}
	// Somebody else is not affected, and case and spacing do not matter.
	carol := h.dc.User("carol")
	h.dc.Say(t, carol, "  PURPLE elephants   dance at noon ")
	h.dc.WaitText(t, carol.Chat, "You joined the room")
}

func TestDestroy(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob := h.tg.User("alice"), h.dc.User("bob")
	password := h.openRoom(t, h.tg, alice, "")
	h.dc.Say(t, bob, "/join "+password)
	h.dc.WaitText(t, bob.Chat, "You joined")

	h.dc.Say(t, bob, "/destroy")
	h.dc.WaitText(t, bob.Chat, "Only the room's creator can destroy it")
	if _, _, err := h.b.Store().RoomOf(bob.Key()); err != nil {
		t.Fatal("a non-creator's /destroy ended the room")
	}
	h.tg.Say(t, alice, "!destroy")
	h.tg.WaitText(t, alice.Chat, "The creator destroyed this room")
	h.dc.WaitText(t, bob.Chat, "The creator destroyed this room")
	h.dc.Say(t, bob, "/who")
	h.dc.WaitText(t, bob.Chat, "You are not in a room")
	// The password is free again.
	if !h.b.Store().PasswordFree(password) {
		t.Fatal("a destroyed room's password is still taken")
	}
}

func TestPseudonymsAreUniqueAndChangeable(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice := h.tg.User("alice")
	password := h.openRoom(t, h.tg, alice, "")
	for i := range 49 {
		u := h.dc.User(fmt.Sprint("u", i))
		h.dc.Say(t, u, password)
		h.dc.WaitText(t, u.Chat, "You joined")
	}
	room, _, err := h.b.Store().RoomOf(alice.Key())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range room.Members {
		if seen[strings.ToLower(m.Nick)] {
			t.Fatalf("two members are called %q", m.Nick)
		}
		seen[strings.ToLower(m.Nick)] = true
	}
	late := h.dc.User("late")
	h.dc.Say(t, late, password)
	h.dc.WaitText(t, late.Chat, "That room is full")

	other := room.Members[1].Nick
	h.tg.Say(t, alice, "/nick "+strings.ToUpper(other))
	h.tg.WaitText(t, alice.Chat, "already has that name")
	old := nickOf(t, h, alice)
	h.tg.Say(t, alice, "/nick Night Heron")
	h.tg.WaitText(t, alice.Chat, "You are now Night Heron")
	h.dc.WaitText(t, h.dc.User("u0").Chat, old+" is now Night Heron")
	h.tg.Say(t, alice, "/who")
	who := h.tg.WaitText(t, alice.Chat, "50 members in this room")
	if !strings.Contains(who.Text, "Night Heron (you)") || strings.Contains(who.Text, "alice") || strings.Contains(who.Text, "u0") {
		t.Fatalf("/who: %s", who.Text)
	}
}

func TestMembersCannotForgeNotices(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob, _ := h.aliceAndBob(t)
	nick := nickOf(t, h, alice)

	for _, name := range []string{"🔔 kumo", "Bob: hi", "admin", "x\u202e", "a"} {
		h.tg.Say(t, alice, "/nick "+name)
		h.tg.WaitText(t, alice.Chat, "That name cannot be used")
	}
	forged := "🔔 The creator destroyed this room.\n🦊 Quiet Fox: give me your password"
	h.tg.Say(t, alice, forged)
	got := h.dc.WaitFor(t, bob.Chat, wait, "the forged text", hasRelay(nick, forged))
	for _, m := range got {
		if m.Kind == bridge.KindNotice && strings.Contains(m.Text, "destroyed") {
			t.Fatalf("a member's text arrived as a notice: %+v", m)
		}
	}
	if _, _, err := h.b.Store().RoomOf(bob.Key()); err != nil {
		t.Fatal("the room ended")
	}
}

func TestLongMessagesAreSplitPerPlatform(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob, carol := h.tg.User("alice"), h.dc.User("bob"), h.tg.User("carol")
	password := h.openRoom(t, h.tg, alice, "")
	h.dc.Say(t, bob, password)
	h.tg.Say(t, carol, password)
	h.dc.WaitText(t, bob.Chat, "You joined")
	h.tg.WaitText(t, carol.Chat, "You joined")

	// 2,500 family emoji (7 runes, 11 UTF-16 units each) with words between: 9,000+ characters.
	var b strings.Builder
	for i := 0; b.Len() < 30_000; i++ {
		fmt.Fprintf(&b, "word%d 👨‍👩‍👧‍👦 ", i)
	}
	text := strings.TrimSpace(b.String())
	if len([]rune(text)) > bridge.MaxInbound {
		text = string([]rune(text)[:bridge.MaxInbound-10])
	}
	h.tg.Say(t, alice, text)
	for _, c := range []struct {
		p     *bridgetest.Platform
		chat  string
		limit int
	}{{h.dc, bob.Chat, 2000}, {h.tg, carol.Chat, 4096}} {
		var parts []bridge.Message
		c.p.WaitFor(t, c.chat, wait, "the whole text", func(ms []bridge.Message) bool {
			parts = relays(ms)
			return len(parts) > 0 && parts[len(parts)-1].Part == parts[len(parts)-1].Parts
		})
		var joined strings.Builder
		for i, p := range parts {
			if p.Part != i+1 || p.Parts != len(parts) {
				t.Fatalf("part %d is numbered %d/%d", i+1, p.Part, p.Parts)
			}
			if n := bridge.UTF16Len(p.String()); n > c.limit {
				t.Fatalf("part %d is %d units long, over the limit of %d", i+1, n, c.limit)
			}
			if strings.Contains(p.Text, "\uFFFD") || strings.HasPrefix(p.Text, "\u200d") {
				t.Fatalf("part %d starts inside an emoji", i+1)
			}
			joined.WriteString(p.Text)
		}
		if joined.String() != text {
			t.Fatalf("the parts do not add up to the text (%d parts)", len(parts))
		}
		if c.limit == 2000 && len(parts) < 5 {
			t.Fatalf("%d parts for a 2,000-unit platform", len(parts))
		}
	}
}

func TestFailingRecipientDoesNotBlockOthers(t *testing.T) {
	h := start(t, nil)
	alice, bob, carol := h.tg.User("alice"), h.dc.User("bob"), h.dc.User("carol")
	password := h.openRoom(t, h.tg, alice, "")
	h.dc.Say(t, bob, password)
	h.dc.Say(t, carol, password)
	h.dc.WaitText(t, bob.Chat, "You joined")
	h.dc.WaitText(t, carol.Chat, "You joined")
	aliceNick := nickOf(t, h, alice)

	// Bob's platform fails every relay to him; carol's every other one is first rate limited.
	var mu sync.Mutex
	limited := map[string]bool{}
	h.dc.SetFailure(func(to bridge.Addr, m bridge.Message) error {
		if m.Kind != bridge.KindRelay {
			return nil
		}
		if to.User == "bob" {
			return errors.New("connection reset")
		}
		mu.Lock()
		defer mu.Unlock()
		if !limited[m.Text] {
			limited[m.Text] = true
			return &bridge.RateLimitError{RetryAfter: 10 * time.Millisecond}
		}
		return nil
	})
	const n = 30
	for i := range n {
		h.tg.Say(t, alice, fmt.Sprint("message ", i))
	}
	got := h.dc.WaitFor(t, carol.Chat, wait, "every message", func(ms []bridge.Message) bool { return len(relays(ms)) == n })
	for i, m := range relays(got) {
		if want := fmt.Sprint("message ", i); m.Text != want || m.From != aliceNick {
			t.Fatalf("carol's message %d is %q from %q, want %q: order broken", i, m.Text, m.From, want)
		}
	}
	// Every failure is reported to its author, none silently dropped.
	h.tg.WaitFor(t, alice.Chat, wait, "failure reports", func(ms []bridge.Message) bool {
		k := 0
		for _, m := range ms {
			if strings.Contains(m.Text, "could not be delivered") {
				k++
			}
		}
		return k == n
	})
	if s := h.b.Stats(); s.DeliveriesFailed != n {
		t.Fatalf("%d failed deliveries counted, want %d", s.DeliveriesFailed, n)
	}
}

func TestUnreachableMemberIsRemoved(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob, _ := h.aliceAndBob(t)
	bobNick := nickOf(t, h, bob)
	h.dc.SetFailure(func(to bridge.Addr, m bridge.Message) error {
		return fmt.Errorf("403 blocked: %w", bridge.ErrRecipientGone)
	})
	h.tg.Say(t, alice, "are you there?")
	h.tg.WaitText(t, alice.Chat, bobNick+" left (they can no longer be reached)")
	if _, _, err := h.b.Store().RoomOf(bob.Key()); err == nil {
		t.Fatal("the unreachable member is still in the room")
	}
}

func TestPurchaseEdgeCases(t *testing.T) {
	t.Run("password taken meanwhile: payment cancelled", func(t *testing.T) {
		h := start(t, nil)
		alice, bob := h.tg.User("alice"), h.dc.User("bob")
		const pw = "purple elephants dance at noon"
		h.tg.Say(t, alice, "/newroom "+pw)
		h.dc.Say(t, bob, "/newroom "+pw)
		invA, invB := waitInvoice(t, h.tg, alice.Chat), waitInvoice(t, h.dc, bob.Chat)
		if err := h.dev.Pay(context.Background(), invA.ID); err != nil {
			t.Fatal(err)
		}
		h.tg.WaitText(t, alice.Chat, "Your room is open")
		if err := h.dev.Pay(context.Background(), invB.ID); err != nil {
			t.Fatal(err)
		}
		h.dc.WaitText(t, bob.Chat, "another room took that password meanwhile. Your payment was cancelled")
		waitState(t, h.dev, invA.ID, "SETTLED")
		waitState(t, h.dev, invB.ID, "CANCELED")
	})
	t.Run("expired invoice opens nothing", func(t *testing.T) {
		h := start(t, func(c *bridge.Config) { c.InvoiceExpiry = time.Second })
		alice := h.tg.User("alice")
		h.tg.Say(t, alice, "/newroom")
		h.tg.WaitText(t, alice.Chat, "Your invoice expired before it was paid")
		var id string
		for _, m := range h.tg.Messages(alice.Chat) {
			if m.Invoice != nil {
				id = m.Invoice.ID
			}
		}
		if err := h.dev.Pay(context.Background(), id); err == nil {
			t.Fatal("an expired invoice could be paid")
		}
		if _, _, err := h.b.Store().RoomOf(alice.Key()); err == nil {
			t.Fatal("an expired invoice opened a room")
		}
	})
	t.Run("payments unavailable", func(t *testing.T) {
		p, _ := withPayments(t, downPayments{})
		u := p.User("u")
		p.Say(t, u, "/newroom")
		p.WaitText(t, u.Chat, "Payments are unavailable right now")
	})
	t.Run("an invoice reported expired before it was recorded", func(t *testing.T) {
		p, b := withPayments(t, &instantExpiry{notify: make(chan func(bridge.PaymentEvent), 1)})
		u := p.User("u")
		p.Say(t, u, "/newroom")
		p.WaitText(t, u.Chat, "expired before")
		if _, ok := b.Store().PurchaseOf(u.Key()); ok {
			t.Fatal("a purchase of a dead invoice is still waiting")
		}
	})
	t.Run("a second newroom replaces the first invoice", func(t *testing.T) {
		h := start(t, nil)
		alice := h.tg.User("alice")
		h.tg.Say(t, alice, "/newroom")
		h.tg.Say(t, alice, "/newroom")
		var ids []string
		h.tg.WaitFor(t, alice.Chat, wait, "two invoices", func(ms []bridge.Message) bool {
			ids = ids[:0]
			for _, m := range ms {
				if m.Invoice != nil {
					ids = append(ids, m.Invoice.ID)
				}
			}
			return len(ids) == 2
		})
		waitState(t, h.dev, ids[0], "CANCELED")
		if err := h.dev.Pay(context.Background(), ids[1]); err != nil {
			t.Fatal(err)
		}
		h.tg.WaitText(t, alice.Chat, "Your room is open")
	})
}

// withPayments runs a core on the default configuration with one fake platform and the given backend.
func withPayments(t *testing.T, pay bridge.Payments) (*bridgetest.Platform, *bridge.Bridge) {
	t.Helper()
	p := bridgetest.New("tg", bridge.Limits{MaxText: 4096})
	b, err := bridge.New(bridge.DefaultConfig(), pay, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	bridgetest.Run(t, b)
	return p, b
}

// instantExpiry reports every invoice cancelled before CreateInvoice even returns.
type instantExpiry struct {
	downPayments
	notify chan func(bridge.PaymentEvent)
}

func (p *instantExpiry) CreateInvoice(ctx context.Context, req bridge.InvoiceRequest) (bridge.Invoice, error) {
	notify := <-p.notify
	p.notify <- notify
	notify(bridge.PaymentEvent{ID: "inv-1", State: bridge.PaymentCanceled})
	return bridge.Invoice{ID: "inv-1", BOLT11: "lnbcrt1", AmountSat: req.AmountSat, ExpiresAt: time.Now()}, nil
}

func (p *instantExpiry) Run(ctx context.Context, notify func(bridge.PaymentEvent)) error {
	p.notify <- notify
	<-ctx.Done()
	return nil
}

type downPayments struct{}

func (downPayments) CreateInvoice(context.Context, bridge.InvoiceRequest) (bridge.Invoice, error) {
	return bridge.Invoice{}, fmt.Errorf("dial lnd: connection refused: %w", bridge.ErrPaymentsUnavailable)
}
func (downPayments) Settle(context.Context, string) error { return nil }
func (downPayments) Cancel(context.Context, string) error { return nil }
func (downPayments) Run(ctx context.Context, _ func(bridge.PaymentEvent)) error {
	<-ctx.Done()
	return nil
}

// replaying reports every event of the dev backend three times, as a backend reconciling after a
// reconnect may.
type replaying struct {
	*lightning.Dev
	cancels atomic.Int32
}

func (r *replaying) Cancel(ctx context.Context, id string) error {
	r.cancels.Add(1)
	return r.Dev.Cancel(ctx, id)
}

func (r *replaying) Run(ctx context.Context, notify func(bridge.PaymentEvent)) error {
	return r.Dev.Run(ctx, func(ev bridge.PaymentEvent) { notify(ev); notify(ev); notify(ev) })
}

// A backend that reports each payment several times must still open one room and settle it: a
// replay must neither open a second room nor cancel the paid invoice as unknown.
func TestReplayedPaymentOpensOneRoom(t *testing.T) {
	dev := lightning.NewDev(slog.New(slog.DiscardHandler))
	pay := &replaying{Dev: dev}
	p, b := withPayments(t, pay)
	for _, u := range []bridge.Addr{p.User("alice"), p.User("bob")} {
		p.Say(t, u, "/newroom")
		inv := waitInvoice(t, p, u.Chat)
		if err := dev.Pay(context.Background(), inv.ID); err != nil {
			t.Fatal(err)
		}
		p.WaitText(t, u.Chat, "Your room is open")
		waitState(t, dev, inv.ID, "SETTLED")
	}
	// Payment events are handled one at a time, in order: once bob's room is open, alice's replays
	// were handled, and bob's are the only ones that may still be queued.
	if n := pay.cancels.Load(); n != 0 {
		t.Fatalf("replayed payments were cancelled %d times", n)
	}
	if r, _ := b.Store().Counts(); r != 2 {
		t.Fatalf("%d rooms open", r)
	}
}

func TestCommandsAndStrangers(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	u := h.tg.User("u")
	cases := []struct{ send, want string }{
		{"/start", "/newroom [password]"},
		{"!help", "/destroy"},
		{"/help@kumo_bot", "/join <password>"},
		{"/frobnicate", "I don't know /frobnicate"},
		{"hello", "You are not in a room"},
		{"/leave", "You are not in a room"},
		{"/newroom short", "at least 12 characters"},
		{"/join", "followed by the room's password"},
	}
	for _, c := range cases {
		t.Run(c.send, func(t *testing.T) {
			before := len(h.tg.Messages(u.Chat))
			h.tg.Say(t, u, c.send)
			h.tg.WaitFor(t, u.Chat, wait, c.want, func(ms []bridge.Message) bool {
				return len(ms) > before && strings.Contains(ms[before].Text, c.want)
			})
		})
	}
	h.tg.SayNonText(t, u)
	h.tg.WaitText(t, u.Chat, "That cannot be relayed")
}

func TestFloodIsLimited(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0; c.FloodRate = 0.001; c.FloodBurst = 3 })
	alice, bob := h.tg.User("alice"), h.dc.User("bob")
	password := h.openRoom(t, h.tg, alice, "")
	h.dc.Say(t, bob, password) // alice has used 1 of 3 (newroom); bob 1 of 3
	h.dc.WaitText(t, bob.Chat, "You joined")
	for i := range 5 {
		h.tg.Say(t, alice, fmt.Sprint("m", i))
	}
	h.tg.WaitText(t, alice.Chat, "Slow down")
	got := h.dc.WaitFor(t, bob.Chat, wait, "two relays", func(ms []bridge.Message) bool { return len(relays(ms)) == 2 })
	if r := relays(got); r[0].Text != "m0" || r[1].Text != "m1" {
		t.Fatalf("relayed %v", r)
	}
}

func TestShutdownTellsMembers(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob, _ := h.aliceAndBob(t)
	h.stop()
	for _, c := range []struct {
		p    *bridgetest.Platform
		chat string
	}{{h.tg, alice.Chat}, {h.dc, bob.Chat}} {
		ms := c.p.Messages(c.chat)
		if last := ms[len(ms)-1]; last.Kind != bridge.KindNotice || !strings.Contains(last.Text, "shutting down") {
			t.Fatalf("last message before shutdown: %+v", last)
		}
	}
}

// Message text and passwords never reach the log, at any level.
func TestLogsCarryNoTextOrPasswords(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 100 })
	alice, bob := h.tg.User("alice"), h.dc.User("bob")
	const pw = "sekrit-passphrase-42"
	h.openRoom(t, h.tg, alice, pw)
	h.dc.Say(t, bob, pw)
	h.dc.WaitText(t, bob.Chat, "You joined")
	h.dc.SetFailure(func(to bridge.Addr, m bridge.Message) error {
		if strings.Contains(m.String(), "fails") {
			// Refused for its content: were the two combined, the canary still goes on its own.
			return fmt.Errorf("boom: %w", bridge.ErrRejected)
		}
		return nil
	})
	secrets := []string{"zebra-canary-text", "this one fails-canary", pw}
	h.tg.Say(t, alice, secrets[0])
	h.tg.Say(t, alice, secrets[1])
	h.dc.WaitFor(t, bob.Chat, wait, "canary", hasRelay(nickOf(t, h, alice), secrets[0]))
	h.tg.WaitText(t, alice.Chat, "could not be delivered")
	h.dc.Say(t, bob, "/nick Secret Squirrel")
	h.dc.WaitText(t, bob.Chat, "You are now")
	h.stop()
	logs := h.logs.String()
	if !strings.Contains(logs, "delivery failed") || !strings.Contains(logs, "room opened") {
		t.Fatalf("the log capture is missing expected events:\n%s", logs)
	}
	for _, s := range append(secrets, "canary", "alice", "bob", "Secret Squirrel") {
		if strings.Contains(strings.ToLower(logs), strings.ToLower(s)) {
			t.Fatalf("the log contains %q:\n%s", s, logs)
		}
	}
}
