package bridge

import (
	"context"
	"errors"
	"time"
)

// Invoice is a payment request as people see it.
type Invoice struct {
	// ID is the backend's handle for the invoice (lnd: the payment hash, hex).
	ID        string
	BOLT11    string
	URI       string // "lightning:" + BOLT11
	AmountSat int64
	ExpiresAt time.Time
	// QR is a PNG of the upper-cased URI (upper case makes a denser QR code), made once by the backend.
	QR []byte
	// Dev marks invoices of the development backend: no real money moves.
	Dev bool
}

// InvoiceRequest asks a backend for a hold invoice.
type InvoiceRequest struct {
	AmountSat int64
	Memo      string // shown in wallets: never a password or anything about the room
	Expiry    time.Duration
}

// PaymentState is what happened to an invoice.
type PaymentState int

const (
	// PaymentAccepted: the payer's money is locked in (an lnd hold invoice is ACCEPTED). It moves only
	// when the bridge calls Settle (the room exists) or Cancel (the payer gets it back).
	PaymentAccepted PaymentState = iota + 1
	// PaymentCanceled: the invoice can no longer be paid (it expired, or was cancelled).
	PaymentCanceled
)

func (s PaymentState) String() string {
	switch s {
	case PaymentAccepted:
		return "accepted"
	case PaymentCanceled:
		return "canceled"
	}
	return "unknown"
}

// PaymentEvent reports a change of an invoice's state. Backends may report the same event more than
// once (stream replays, reconciliation after a reconnect): the bridge acts on each invoice once.
type PaymentEvent struct {
	ID    string
	State PaymentState
}

// Payments is a payment backend. The flow it must allow: create a hold invoice; report it ACCEPTED
// when paid; the bridge then creates the room and calls Settle, or calls Cancel if it cannot, so that
// no one pays for a room that does not exist.
type Payments interface {
	// CreateInvoice makes a hold invoice. It wraps ErrPaymentsUnavailable when the backend cannot be
	// reached, so the bridge can tell the person to try later.
	CreateInvoice(ctx context.Context, req InvoiceRequest) (Invoice, error)
	// Settle takes the payment of an accepted invoice. Settling an already settled invoice is not an error.
	Settle(ctx context.Context, id string) error
	// Cancel gives the payer their money back (or makes an unpaid invoice unpayable). Cancelling an
	// already cancelled invoice is not an error.
	Cancel(ctx context.Context, id string) error
	// Run watches the invoices this backend created and reports their changes to notify until ctx
	// ends. notify must not block for long.
	Run(ctx context.Context, notify func(PaymentEvent)) error
}

// ErrPaymentsUnavailable means the payment backend cannot take payments right now.
var ErrPaymentsUnavailable = errors.New("payments are unavailable")
