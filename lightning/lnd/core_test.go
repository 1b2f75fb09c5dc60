package lnd_test

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/lightning/lnd/lndtest"
)

// core is kumo's core selling rooms through kumo's lnd, with one in-memory messenger.
type core struct {
	p    *bridgetest.Platform
	logs *bridgetest.LogBuffer
	stop func(t *testing.T)
}

func startCore(t *testing.T, addr string, mutate func(*bridge.Config)) *core {
	t.Helper()
	log, logs := testLog(t)
	be, err := lnd.New(testCtx(t), kumoConfig(addr), log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = price
	cfg.FloodRate = 0
	cfg.Retry = bridge.RetryPolicy{Attempts: 3, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxRateLimitWait: time.Minute}
	if mutate != nil {
		mutate(&cfg)
	}
	c := &core{p: bridgetest.New("tg", bridge.Limits{MaxText: 4096}), logs: logs}
	b, err := bridge.New(cfg, be, log, c.p)
	if err != nil {
		t.Fatal(err)
	}
	stopCore := bridgetest.Run(t, b)
	var once sync.Once
	c.stop = func(*testing.T) {
		once.Do(func() {
			stopCore()
			be.Close() // only once the core no longer uses it
		})
	}
	t.Cleanup(func() { c.stop(t) })
	return c
}

// newRoom has the user ask for a room and returns the invoice the core showed them.
func (c *core) newRoom(t *testing.T, user bridge.Addr, password string) bridge.Invoice {
	t.Helper()
	before := len(c.p.Messages(user.Chat))
	c.p.Say(t, user, strings.TrimSpace("/newroom "+password))
	var msg bridge.Message
	c.p.WaitFor(t, user.Chat, 20*time.Second, "an invoice", func(ms []bridge.Message) bool {
		for _, m := range ms[before:] {
			if m.Kind == bridge.KindInvoice && m.Invoice != nil {
				msg = m
				return true
			}
		}
		return false
	})
	if msg.Code != msg.Invoice.BOLT11 {
		t.Fatalf("invoice message code %q, want the BOLT11", msg.Code)
	}
	return *msg.Invoice
}

func (c *core) count(chat, substr string) int {
	n := 0
	for _, m := range c.p.Messages(chat) {
		if strings.Contains(m.String(), substr) {
			n++
		}
	}
	return n
}

// noSecrets fails the test if a password shows up in kumo's logs.
func (c *core) noSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	logs := c.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a password appears in the logs")
		}
	}
}

const roomOpen = "Your room is open"

// newroom -> pay -> the room opens -> the invoice is SETTLED and the payer paid exactly the price.
func TestCoreRoomOpensAndSettles(t *testing.T) {
	ctx := testCtx(t)
	c := startCore(t, netw.Kumo.RPCAddr, nil)
	alice := c.p.User("alice")
	const password = "violet-harbour-lantern"
	before := payerBalance(t, ctx)
	inv := c.newRoom(t, alice, password)
	if imgs := c.p.Images(alice.Chat); len(imgs) != 1 || !bytes.Equal(imgs[0].PNG, inv.QR) || !bytes.HasPrefix(imgs[0].PNG, []byte("\x89PNG")) {
		t.Errorf("the invoice's QR code was not sent as its image")
	}
	pay := netw.Pay(ctx, inv.BOLT11)
	c.p.WaitText(t, alice.Chat, roomOpen)
	wantSucceeded(t, ctx, pay)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_SETTLED)
	if err := netw.WaitPayerBalance(ctx, before-price, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	c.noSecrets(t, password)
}

// The room cannot be created because its password was taken meanwhile: the payment is cancelled and
// the payer's funds are intact.
func TestCorePasswordTakenCancels(t *testing.T) {
	ctx := testCtx(t)
	c := startCore(t, netw.Kumo.RPCAddr, nil)
	alice, bob := c.p.User("alice"), c.p.User("bob")
	const password = "amber-quarry-whistle"
	before := payerBalance(t, ctx)
	invA := c.newRoom(t, alice, password)
	invB := c.newRoom(t, bob, password)
	wantSucceeded(t, ctx, netw.Pay(ctx, invB.BOLT11))
	c.p.WaitText(t, bob.Chat, roomOpen)

	payA := netw.Pay(ctx, invA.BOLT11)
	c.p.WaitText(t, alice.Chat, "could not be opened")
	wantFailed(t, ctx, payA)
	wantState(t, ctx, invA.ID, lnrpc.Invoice_CANCELED)
	wantState(t, ctx, invB.ID, lnrpc.Invoice_SETTLED)
	if err := netw.WaitPayerBalance(ctx, before-price, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := c.count(alice.Chat, roomOpen); n != 0 {
		t.Errorf("alice got a room")
	}
	c.noSecrets(t, password)
}

// kumo's lnd restarts while an invoice is open, and the invoice is paid while kumo's connection to
// lnd is down: when it is back, the room opens, once. Meanwhile /newroom says payments are
// unavailable.
func TestCoreStreamDownRoomOpensOnce(t *testing.T) {
	ctx := testCtx(t)
	proxy, err := lndtest.NewProxy(netw.Kumo.RPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	c := startCore(t, proxy.Addr(), nil)
	alice, bob := c.p.User("alice"), c.p.User("bob")
	inv := c.newRoom(t, alice, "")

	proxy.SetDown(true)
	if err := netw.RestartKumo(ctx); err != nil {
		t.Fatal(err)
	}
	c.p.Say(t, bob, "/newroom")
	c.p.WaitText(t, bob.Chat, "Payments are unavailable")
	pay := netw.Pay(ctx, inv.BOLT11)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_ACCEPTED)
	if n := c.count(alice.Chat, roomOpen); n != 0 {
		t.Fatalf("the room opened through a cut connection")
	}

	proxy.SetDown(false)
	c.p.WaitText(t, alice.Chat, roomOpen)
	wantSucceeded(t, ctx, pay)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_SETTLED)
	if n := c.count(alice.Chat, roomOpen); n != 1 {
		t.Errorf("the room opened %d times", n)
	}
}

// kumo stops after the payment is ACCEPTED but before it could act on it (its connection to lnd is
// cut, so it never hears of it), and a new kumo starts: the invoice is cancelled at start and the
// payer keeps their money.
func TestCoreRestartCancelsPaid(t *testing.T) {
	ctx := testCtx(t)
	proxy, err := lndtest.NewProxy(netw.Kumo.RPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	first := startCore(t, proxy.Addr(), nil)
	alice := first.p.User("alice")
	before := payerBalance(t, ctx)
	inv := first.newRoom(t, alice, "")
	proxy.SetDown(true)
	pay := netw.Pay(ctx, inv.BOLT11)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_ACCEPTED)
	first.stop(t)
	stillInFlight(t, pay)

	second := startCore(t, netw.Kumo.RPCAddr, nil)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_CANCELED)
	wantFailed(t, ctx, pay)
	if err := netw.WaitPayerBalance(ctx, before, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := first.count(alice.Chat, roomOpen) + second.count(alice.Chat, roomOpen); n != 0 {
		t.Errorf("a room opened")
	}
}

// An invoice that expires is never settled and opens nothing; the person is told.
func TestCoreExpiry(t *testing.T) {
	ctx := testCtx(t)
	c := startCore(t, netw.Kumo.RPCAddr, func(cfg *bridge.Config) { cfg.InvoiceExpiry = 2 * time.Second })
	alice := c.p.User("alice")
	before := payerBalance(t, ctx)
	inv := c.newRoom(t, alice, "")
	c.p.WaitText(t, alice.Chat, "expired before it was paid")
	wantState(t, ctx, inv.ID, lnrpc.Invoice_CANCELED)
	wantFailed(t, ctx, netw.Pay(ctx, inv.BOLT11))
	if err := netw.WaitPayerBalance(ctx, before, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := c.count(alice.Chat, roomOpen); n != 0 {
		t.Errorf("an expired invoice opened a room")
	}
}

// TestPaymentLatency measures, over 20 invoices each, the time from the payer's payment call to
// the ACCEPTED event of the backend, and to the "room open" message being handed to the platform
// through the core. It logs median and max; it asserts no timing.
func TestPaymentLatency(t *testing.T) {
	const rounds = 20
	ctx := testCtx(t)
	t.Run("backend", func(t *testing.T) {
		b := startBackend(t, netw.Kumo.RPCAddr)
		var took []time.Duration
		for range rounds {
			inv := create(t, ctx, b, 10*time.Minute)
			start := time.Now()
			pay := netw.Pay(ctx, inv.BOLT11)
			took = append(took, b.rec.Wait(t, inv.ID, bridge.PaymentAccepted, 30*time.Second).Sub(start))
			if err := b.Settle(ctx, inv.ID); err != nil {
				t.Fatal(err)
			}
			wantSucceeded(t, ctx, pay)
		}
		t.Logf("payment call -> ACCEPTED event, %d invoices: %s", rounds, summary(took))
	})
	t.Run("core", func(t *testing.T) {
		c := startCore(t, netw.Kumo.RPCAddr, nil)
		var took []time.Duration
		for i := range rounds {
			user := c.p.User("user" + string(rune('a'+i)))
			inv := c.newRoom(t, user, "")
			start := time.Now()
			pay := netw.Pay(ctx, inv.BOLT11)
			c.p.WaitText(t, user.Chat, roomOpen)
			took = append(took, time.Since(start))
			wantSucceeded(t, ctx, pay)
		}
		t.Logf("payment call -> room-open message handed to the platform, %d rooms: %s", rounds, summary(took))
	})
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	median := s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return "median " + median.Round(time.Millisecond).String() + ", max " + s[len(s)-1].Round(time.Millisecond).String()
}
