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

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/kumo-chat/kumo/bridge"
)

// devRemembered is how many finished (settled or cancelled) invoices the development backend still
// knows, so that repeated Settle/Cancel calls stay idempotent as Payments requires. Older ones are
// forgotten: only open and accepted invoices are held without bound of time, and the core caps those.
const devRemembered = 1024

// Dev is the development payment backend: invoices that no wallet can pay, paid only by an explicit
// call to Pay (from tests, or the web page's clearly labelled "simulate payment" button). It moves no
// money and says so on every invoice (Invoice.Dev). It keeps the hold-invoice life cycle of lnd:
// open -> accepted -> settled, or cancelled (by kumo, or by expiry). It forgets an invoice once it is
// settled, cancelled or expired, keeping only its final state among the last devRemembered (an LRU
// from hashicorp/golang-lru, so memory stays bounded however many invoices it makes).
type Dev struct {
	log *slog.Logger

	mu       sync.Mutex
	invoices map[string]*devInvoice // open and accepted only
	done     *lru.Cache[string, devState]
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
	done, err := lru.New[string, devState](devRemembered)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &Dev{log: log, invoices: make(map[string]*devInvoice), done: done}
}

// finish forgets an invoice, remembering only how it ended. Callers hold mu.
func (d *Dev) finish(id string, st devState) {
	if inv, ok := d.invoices[id]; ok {
		inv.timer.Stop()
		delete(d.invoices, id)
	}
	d.done.Add(id, st)
}

// Held is how many invoices the backend holds in full (open or accepted).
func (d *Dev) Held() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.invoices)
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
		d.finish(id, devCanceled)
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
		if d.done.Contains(id) {
			return ErrNotPayable
		}
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
	if !ok {
		switch st, known := d.done.Get(id); {
		case !known:
			return ErrUnknownInvoice
		case st == devSettled:
			return nil
		default:
			return ErrNotAccepted
		}
	}
	if inv.state != devAccepted {
		return ErrNotAccepted
	}
	d.finish(id, devSettled)
	return nil
}

// Cancel cancels an invoice, refunding an accepted payment.
func (d *Dev) Cancel(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.invoices[id]; !ok {
		switch st, known := d.done.Get(id); {
		case !known:
			return ErrUnknownInvoice
		case st == devSettled:
			return fmt.Errorf("dev invoice %s is settled: %w", short(id), ErrNotPayable)
		default:
			return nil
		}
	}
	d.finish(id, devCanceled)
	return nil
}

// State returns the invoice's state as lnd names them: OPEN, ACCEPTED, SETTLED or CANCELED.
func (d *Dev) State(id string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := devOpen
	if inv, ok := d.invoices[id]; ok {
		st = inv.state
	} else if fin, known := d.done.Peek(id); known {
		st = fin
	} else {
		return "", ErrUnknownInvoice
	}
	return [...]string{"OPEN", "ACCEPTED", "SETTLED", "CANCELED"}[st], nil
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

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
