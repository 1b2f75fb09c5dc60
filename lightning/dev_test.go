package lightning_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/lightning/paymentstest"
)

const wait = 10 * time.Second

func TestDevLifecycle(t *testing.T) {
	ctx := context.Background()
	d := lightning.NewDev(slog.New(slog.DiscardHandler))
	events := make(chan bridge.PaymentEvent, 8)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = d.Run(rctx, func(ev bridge.PaymentEvent) { events <- ev }) }()

	newInv := func(expiry time.Duration) bridge.Invoice {
		inv, err := d.CreateInvoice(ctx, bridge.InvoiceRequest{AmountSat: 10_000, Memo: "kumo room", Expiry: expiry})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	inv := newInv(time.Minute)
	if !inv.Dev || inv.AmountSat != 10_000 || !strings.HasPrefix(inv.URI, "lightning:") || !bytes.HasPrefix(inv.QR, []byte("\x89PNG")) {
		t.Fatalf("invoice %+v", inv)
	}
	steps := []struct {
		name  string
		do    func() error
		want  error
		state string
	}{
		{"settle before paying", func() error { return d.Settle(ctx, inv.ID) }, lightning.ErrNotAccepted, "OPEN"},
		{"pay", func() error { return d.Pay(ctx, inv.ID) }, nil, "ACCEPTED"},
		{"pay twice", func() error { return d.Pay(ctx, inv.ID) }, lightning.ErrNotPayable, "ACCEPTED"},
		{"settle", func() error { return d.Settle(ctx, inv.ID) }, nil, "SETTLED"},
		{"settle again is fine", func() error { return d.Settle(ctx, inv.ID) }, nil, "SETTLED"},
		{"a settled invoice cannot be cancelled", func() error { return d.Cancel(ctx, inv.ID) }, lightning.ErrNotPayable, "SETTLED"},
	}
	for _, s := range steps {
		if err := s.do(); !errors.Is(err, s.want) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
		if got, _ := d.State(inv.ID); got != s.state {
			t.Fatalf("%s: state %s, want %s", s.name, got, s.state)
		}
	}
	if ev := <-events; ev.ID != inv.ID || ev.State != bridge.PaymentAccepted {
		t.Fatalf("event %+v", ev)
	}

	short := newInv(50 * time.Millisecond)
	select {
	case ev := <-events:
		if ev.ID != short.ID || ev.State != bridge.PaymentCanceled {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an expired invoice was never reported")
	}
	if err := d.Pay(ctx, short.ID); !errors.Is(err, lightning.ErrNotPayable) {
		t.Fatalf("paying an expired invoice: %v", err)
	}
	if err := d.Pay(ctx, "nope"); !errors.Is(err, lightning.ErrUnknownInvoice) {
		t.Fatalf("paying an unknown invoice: %v", err)
	}
}

// devHarness runs the shared Payments contract against the development backend; its wallet is the
// web page's simulate button (Dev.Pay).
type devHarness struct{}

func (devHarness) New(*testing.T) bridge.Payments { return lightning.NewDev(nil) }

func (devHarness) Pay(t *testing.T, ctx context.Context, b bridge.Payments, inv bridge.Invoice) func(context.Context) bool {
	d := b.(*lightning.Dev)
	if err := d.Pay(ctx, inv.ID); err != nil {
		return func(context.Context) bool { return false }
	}
	return func(context.Context) bool {
		st, _ := d.State(inv.ID)
		return st == "SETTLED"
	}
}

func (devHarness) ShortExpiry() time.Duration { return 50 * time.Millisecond }
func (devHarness) Timeout() time.Duration     { return 10 * time.Second }

func TestDevPaymentsContract(t *testing.T) { paymentstest.Run(t, devHarness{}) }

// The development backend forgets invoices once they are settled, cancelled or expired: its memory
// is what is still payable, plus a bounded record of how the last ones ended.
func TestDevForgetsFinishedInvoices(t *testing.T) {
	ctx := context.Background()
	d := lightning.NewDev(slog.New(slog.DiscardHandler))
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	expired := make(chan string, 2048)
	go func() {
		_ = d.Run(rctx, func(ev bridge.PaymentEvent) {
			if ev.State == bridge.PaymentCanceled {
				expired <- ev.ID
			}
		})
	}()
	newInv := func(expiry time.Duration) string {
		inv, err := d.CreateInvoice(ctx, bridge.InvoiceRequest{AmountSat: 1, Memo: "kumo room", Expiry: expiry})
		if err != nil {
			t.Fatal(err)
		}
		return inv.ID
	}
	const each = 345 // three kinds of ending: 1,035 finished, more than the 1,024 the backend remembers
	var ids []string
	for i := range 3 * each {
		switch i % 3 {
		case 0:
			id := newInv(time.Hour)
			if err := d.Pay(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := d.Settle(ctx, id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		case 1:
			id := newInv(time.Hour)
			if err := d.Cancel(ctx, id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		case 2:
			ids = append(ids, newInv(time.Millisecond))
		}
	}
	deadline := time.After(wait)
	for n := 0; n < each; n++ {
		select {
		case <-expired:
		case <-deadline:
			t.Fatalf("only %d of %d invoices reported expired", n, each)
		}
	}
	if n := d.Held(); n != 0 {
		t.Fatalf("%d finished invoices still held", n)
	}
	open := newInv(time.Hour)
	if n := d.Held(); n != 1 {
		t.Fatalf("%d invoices held, want the one open invoice", n)
	}
	// The most recent endings are remembered, so repeating them stays harmless.
	last := ids[len(ids)-3] // settled
	if err := d.Settle(ctx, last); err != nil {
		t.Fatalf("settling a settled invoice again: %v", err)
	}
	if err := d.Cancel(ctx, ids[len(ids)-2]); err != nil {
		t.Fatalf("cancelling a cancelled invoice again: %v", err)
	}
	if err := d.Cancel(ctx, last); !errors.Is(err, lightning.ErrNotPayable) {
		t.Fatalf("cancelling a settled invoice: %v", err)
	}
	if err := d.Pay(ctx, ids[len(ids)-1]); !errors.Is(err, lightning.ErrNotPayable) {
		t.Fatalf("paying an expired invoice: %v", err)
	}
	if st, err := d.State(last); err != nil || st != "SETTLED" {
		t.Fatalf("state of a recent settled invoice: %s, %v", st, err)
	}
	// The oldest are forgotten altogether.
	if _, err := d.State(ids[0]); !errors.Is(err, lightning.ErrUnknownInvoice) {
		t.Fatalf("the oldest finished invoice is still known: %v", err)
	}
	if st, _ := d.State(open); st != "OPEN" {
		t.Fatalf("open invoice: %s", st)
	}
}
