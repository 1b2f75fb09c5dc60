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
