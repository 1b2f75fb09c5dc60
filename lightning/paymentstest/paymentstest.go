// Package paymentstest is the contract of bridge.Payments written down once, as a test every payment
// backend runs (the tailscale ipn/store/storetest pattern): create, settle only after the payment is
// accepted, cancel, repeated calls, what a restarted kumo finds, expiry.
package paymentstest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// Harness is one backend under test and a wallet that pays it.
type Harness interface {
	// New makes a backend as a newly started kumo process would have it (the suite runs it). Called
	// again, it is a restarted kumo: same node, nothing remembered.
	New(t *testing.T) bridge.Payments
	// Pay starts paying inv from a wallet. wait reports, once the backend has settled or cancelled,
	// whether the money moved (true) or stayed with the payer (false).
	Pay(t *testing.T, ctx context.Context, b bridge.Payments, inv bridge.Invoice) (wait func(ctx context.Context) bool)
	// ShortExpiry is the shortest invoice expiry the backend honours, for the expiry test.
	ShortExpiry() time.Duration
	// Timeout bounds each wait for an event (a regtest node is slower than memory).
	Timeout() time.Duration
}

// Run runs the whole contract against h.
func Run(t *testing.T, h Harness) {
	t.Run("Create", func(t *testing.T) { testCreate(t, h) })
	t.Run("SettleOnlyAfterAccepted", func(t *testing.T) { testSettle(t, h) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, h) })
	t.Run("RestartLeftovers", func(t *testing.T) { testRestart(t, h) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, h) })
}

const price = 1234

// running is a backend run for one test, with every event it reported.
type running struct {
	bridge.Payments
	Events
	run *bridgetest.Running
}

func start(t *testing.T, h Harness) *running {
	t.Helper()
	r := &running{Payments: h.New(t)}
	r.run = bridgetest.Background(t, "payments", func(ctx context.Context) error { return r.Run(ctx, r.Notify) })
	return r
}

func create(t *testing.T, ctx context.Context, b bridge.Payments, expiry time.Duration) bridge.Invoice {
	t.Helper()
	inv, err := b.CreateInvoice(ctx, bridge.InvoiceRequest{AmountSat: price, Memo: "kumo room", Expiry: expiry})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func testCtx(t *testing.T, h Harness) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*h.Timeout())
	t.Cleanup(cancel)
	return ctx
}

func testCreate(t *testing.T, h Harness) {
	ctx := testCtx(t, h)
	b := start(t, h)
	before := time.Now()
	a, b2 := create(t, ctx, b, 10*time.Minute), create(t, ctx, b, 10*time.Minute)
	for _, inv := range []bridge.Invoice{a, b2} {
		if inv.ID == "" || inv.BOLT11 == "" || inv.URI != "lightning:"+inv.BOLT11 || inv.AmountSat != price {
			t.Errorf("invoice %+v", inv)
		}
		if inv.ExpiresAt.Before(before.Add(10*time.Minute-time.Second)) || inv.ExpiresAt.After(time.Now().Add(10*time.Minute+time.Second)) {
			t.Errorf("expires at %s, want 10 minutes from now", inv.ExpiresAt)
		}
		if !bytes.HasPrefix(inv.QR, []byte("\x89PNG\r\n\x1a\n")) {
			t.Error("QR is not a PNG")
		}
	}
	if a.ID == b2.ID || a.BOLT11 == b2.BOLT11 {
		t.Error("two invoices are the same")
	}
	if strings.Contains(strings.ToLower(a.BOLT11), "password") {
		t.Error("the invoice carries more than the memo")
	}
}

func testSettle(t *testing.T, h Harness) {
	ctx := testCtx(t, h)
	b := start(t, h)
	inv := create(t, ctx, b, 10*time.Minute)
	if err := b.Settle(ctx, inv.ID); err == nil {
		t.Fatal("an unpaid invoice settled")
	}
	moved := h.Pay(t, ctx, b.Payments, inv)
	b.Wait(t, inv.ID, bridge.PaymentAccepted, h.Timeout())
	for range 2 { // settling again is not an error
		if err := b.Settle(ctx, inv.ID); err != nil {
			t.Fatal(err)
		}
	}
	if !moved(ctx) {
		t.Fatal("the payer's money did not move after Settle")
	}
	if n := b.Count(inv.ID, bridge.PaymentCanceled); n != 0 {
		t.Error("a settled invoice was reported cancelled")
	}
	if err := b.Cancel(ctx, inv.ID); err == nil {
		t.Error("a settled invoice was cancelled")
	}
}

func testCancel(t *testing.T, h Harness) {
	ctx := testCtx(t, h)
	b := start(t, h)
	paid, unpaid := create(t, ctx, b, 10*time.Minute), create(t, ctx, b, 10*time.Minute)
	moved := h.Pay(t, ctx, b.Payments, paid)
	b.Wait(t, paid.ID, bridge.PaymentAccepted, h.Timeout())
	for _, inv := range []bridge.Invoice{paid, unpaid} {
		for range 2 { // cancelling again is not an error
			if err := b.Cancel(ctx, inv.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Settle(ctx, inv.ID); err == nil {
			t.Error("a cancelled invoice settled")
		}
	}
	if moved(ctx) {
		t.Fatal("the payer lost the money of a cancelled invoice")
	}
	if late := h.Pay(t, ctx, b.Payments, unpaid); late(ctx) {
		t.Error("a cancelled invoice could be paid")
	}
	if b.Count(unpaid.ID, bridge.PaymentAccepted) != 0 {
		t.Error("a cancelled invoice was reported paid")
	}
}

// A restarted kumo has lost its preimages by design: what the last run left (paid or not) can never
// be settled, the payer keeps their money, and the new run reports nothing about invoices it never
// made.
func testRestart(t *testing.T, h Harness) {
	ctx := testCtx(t, h)
	old := start(t, h)
	paid, unpaid := create(t, ctx, old, 10*time.Minute), create(t, ctx, old, 10*time.Minute)
	moved := h.Pay(t, ctx, old.Payments, paid)
	old.Wait(t, paid.ID, bridge.PaymentAccepted, h.Timeout())
	old.run.Stop()

	fresh := start(t, h)
	if err := fresh.Settle(ctx, paid.ID); err == nil {
		t.Error("the new run settled an invoice of the old one")
	}
	if moved(ctx) {
		t.Fatal("the payer lost the money of an invoice the old run could not settle")
	}
	if late := h.Pay(t, ctx, fresh.Payments, unpaid); late(ctx) {
		t.Error("an invoice of the old run could still be paid")
	}
	mine := create(t, ctx, fresh, 10*time.Minute)
	for _, ev := range fresh.All() {
		if ev.ID == paid.ID || ev.ID == unpaid.ID {
			t.Errorf("the new run reported %v about an invoice it never made", ev)
		}
	}
	if err := fresh.Cancel(ctx, mine.ID); err != nil {
		t.Fatal(err)
	}
}

func testExpiry(t *testing.T, h Harness) {
	ctx := testCtx(t, h)
	b := start(t, h)
	inv := create(t, ctx, b, h.ShortExpiry())
	b.Wait(t, inv.ID, bridge.PaymentCanceled, h.Timeout())
	if late := h.Pay(t, ctx, b.Payments, inv); late(ctx) {
		t.Error("an expired invoice could be paid")
	}
	if err := b.Settle(ctx, inv.ID); err == nil {
		t.Error("an expired invoice settled")
	}
	if b.Count(inv.ID, bridge.PaymentAccepted) != 0 {
		t.Error("an expired invoice was reported paid")
	}
}
