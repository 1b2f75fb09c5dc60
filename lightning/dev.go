package lightning

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kumo-chat/kumo/bridge"
)

// Dev is the development payment backend: invoices that no wallet can pay, paid only by an explicit
// call to Pay (from tests, or the web page's clearly labelled "simulate payment" button). It moves no
// money and says so on every invoice (Invoice.Dev). It keeps the hold-invoice life cycle of lnd:
// open -> accepted -> settled, or cancelled (by kumo, or by expiry).
type Dev struct {
	log *slog.Logger

	mu       sync.Mutex
	invoices map[string]*devInvoice
	notify   func(bridge.PaymentEvent)
	pending  []bridge.PaymentEvent // events raised before Run started
}

type devState int

const (
	devOpen devState = iota
	devAccepted
	devSettled
	devCanceled
)

type devInvoice struct {
	state devState
	timer *time.Timer
}

// Errors of the development backend.
var (
	ErrUnknownInvoice = errors.New("unknown invoice")
	ErrNotPayable     = errors.New("invoice cannot be paid")
	ErrNotAccepted    = errors.New("invoice has not been paid")
)

// DevName is the development backend's lightning.backend name.
const DevName = "dev"

// NewDev makes a development backend; a nil log discards.
func NewDev(log *slog.Logger) *Dev {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dev{log: log, invoices: make(map[string]*devInvoice)}
}

// CreateInvoice makes an invoice that only Pay can pay.
func (d *Dev) CreateInvoice(ctx context.Context, req bridge.InvoiceRequest) (bridge.Invoice, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return bridge.Invoice{}, fmt.Errorf("dev invoice: %w", err)
	}
	id := hex.EncodeToString(b)
	// Shaped like a regtest BOLT11 but not one: no wallet can pay it, which is the point.
	bolt11 := fmt.Sprintf("lnbcrt%dn1devkumo%s", req.AmountSat*10, id[:48])
	uri := "lightning:" + bolt11
	qr, err := QRCode(uri)
	if err != nil {
		return bridge.Invoice{}, err
	}
	inv := &devInvoice{}
	d.mu.Lock()
	d.invoices[id] = inv
	inv.timer = time.AfterFunc(req.Expiry, func() { d.expire(id) })
	d.mu.Unlock()
	d.log.Debug("dev invoice created", "invoice", id[:8], "amount_sat", req.AmountSat)
	return bridge.Invoice{
		ID: id, BOLT11: bolt11, URI: uri, AmountSat: req.AmountSat,
		ExpiresAt: time.Now().Add(req.Expiry), QR: qr, Dev: true,
	}, nil
}

func (d *Dev) expire(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if inv, ok := d.invoices[id]; ok && inv.state == devOpen {
		inv.state = devCanceled
		d.emit(bridge.PaymentEvent{ID: id, State: bridge.PaymentCanceled})
	}
}

// emit reports an event; called with mu held so events keep their order.
func (d *Dev) emit(ev bridge.PaymentEvent) {
	if d.notify == nil {
		d.pending = append(d.pending, ev)
		return
	}
	d.notify(ev)
}

// Pay pays an open invoice: it becomes accepted, as an lnd hold invoice does once the HTLC arrives.
func (d *Dev) Pay(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	inv, ok := d.invoices[id]
	if !ok {
		return ErrUnknownInvoice
	}
	if inv.state != devOpen {
		return ErrNotPayable
	}
	inv.state = devAccepted
	inv.timer.Stop()
	d.emit(bridge.PaymentEvent{ID: id, State: bridge.PaymentAccepted})
	return nil
}

// Settle takes an accepted payment.
func (d *Dev) Settle(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	inv, ok := d.invoices[id]
	switch {
	case !ok:
		return ErrUnknownInvoice
	case inv.state == devSettled:
		return nil
	case inv.state != devAccepted:
		return ErrNotAccepted
	}
	inv.state = devSettled
	return nil
}

// Cancel cancels an invoice, refunding an accepted payment.
func (d *Dev) Cancel(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	inv, ok := d.invoices[id]
	if !ok {
		return ErrUnknownInvoice
	}
	if inv.state == devSettled {
		return fmt.Errorf("dev invoice %s is settled: %w", id[:8], ErrNotPayable)
	}
	inv.timer.Stop()
	inv.state = devCanceled
	return nil
}

// State returns the invoice's state as lnd names them: OPEN, ACCEPTED, SETTLED or CANCELED.
func (d *Dev) State(id string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	inv, ok := d.invoices[id]
	if !ok {
		return "", ErrUnknownInvoice
	}
	return [...]string{"OPEN", "ACCEPTED", "SETTLED", "CANCELED"}[inv.state], nil
}

// Run delivers events to notify until ctx ends.
func (d *Dev) Run(ctx context.Context, notify func(bridge.PaymentEvent)) error {
	d.mu.Lock()
	d.notify = notify
	for _, ev := range d.pending {
		notify(ev)
	}
	d.pending = nil
	d.mu.Unlock()
	<-ctx.Done()
	d.mu.Lock()
	d.notify = nil
	d.mu.Unlock()
	return nil
}
