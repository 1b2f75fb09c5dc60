package rooms

import (
	"errors"
	"strings"
	"time"
)

// Purchase is a room being paid for: it becomes a room when its invoice is paid.
type Purchase struct {
	InvoiceID string
	Creator   Member
	// Password is what the room will open with. Held only in memory, only until the room opens or the
	// invoice expires.
	Password string
	// Generated says kumo drew the password (so it is shown to the creator when the room opens).
	Generated bool
	ExpiresAt time.Time
	// Origin is where the buyer came from (Inbound.Origin), for the per-origin cap on unpaid purchases.
	Origin string
}

// Errors of the caps on unpaid purchases. A person's own pending purchase is replaced by their next
// one, so it never counts against them.
var (
	ErrTooManyPendingOrigin = errors.New("too many unpaid invoices from this origin")
	ErrTooManyPending       = errors.New("too many unpaid invoices")
)

// CanPurchase says whether a new purchase by key from origin would fit under the caps on unpaid
// purchases, so no invoice is made for one that would not. AddPurchase checks again.
func (s *Store) CanPurchase(key, origin string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.canPurchase(key, origin)
}

// canPurchase: callers hold mu.
func (s *Store) canPurchase(key, origin string) error {
	replacing := ""
	replaces := false
	if v, found := s.c.Get(buyerPrefix + key); found {
		if old, found := s.c.Get(invoicePrefix + v.(string)); found {
			replacing, replaces = old.(*Purchase).Origin, true
		}
	}
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	total, here := s.pending[""], 0
	if origin != "" {
		here = s.pending[origin]
	}
	if replaces {
		total--
		if replacing == origin {
			here--
		}
	}
	switch {
	case origin != "" && here >= s.cfg.MaxPendingPerOrigin:
		return ErrTooManyPendingOrigin
	case total >= s.cfg.MaxPendingGlobal:
		return ErrTooManyPending
	}
	return nil
}

func (s *Store) pend(origin string) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	s.pending[""]++
	if origin != "" {
		s.pending[origin]++
	}
}

// unpend is called by the cache whenever a purchase leaves it (taken, replaced or expired).
func (s *Store) unpend(origin string) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	s.pending[""]--
	if origin != "" {
		if s.pending[origin]--; s.pending[origin] <= 0 {
			delete(s.pending, origin)
		}
	}
}

// Pending is how many purchases are waiting to be paid.
func (s *Store) Pending() int {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	return s.pending[""]
}

// purchaseGrace keeps a purchase a little past its invoice's expiry, so the backend's own "expired"
// report still finds it and the buyer is told.
const purchaseGrace = time.Minute

// AddPurchase records a pending purchase. A person has one at a time: the one it replaces, if any,
// is returned so its invoice can be cancelled. Past a cap on unpaid purchases nothing is recorded and
// the error says which cap (the caller cancels the invoice it made).
func (s *Store) AddPurchase(p Purchase) (replaced Purchase, ok bool, err error) {
	key := p.Creator.Key()
	ttl := time.Until(p.ExpiresAt) + purchaseGrace
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.canPurchase(key, p.Origin); err != nil {
		return Purchase{}, false, err
	}
	if v, found := s.c.Get(buyerPrefix + key); found {
		if old, found := s.c.Get(invoicePrefix + v.(string)); found {
			replaced, ok = *old.(*Purchase), true
			s.c.Delete(invoicePrefix + replaced.InvoiceID)
		}
	}
	cp := p
	s.pend(p.Origin)
	s.c.Set(invoicePrefix+p.InvoiceID, &cp, ttl)
	s.c.Set(buyerPrefix+key, p.InvoiceID, ttl)
	return replaced, ok, nil
}

// TakePurchase removes and returns the purchase for an invoice. Only the first caller gets it, so a
// payment reported twice opens one room.
func (s *Store) TakePurchase(invoiceID string) (Purchase, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.c.Get(invoicePrefix + invoiceID)
	if !ok {
		return Purchase{}, false
	}
	p := *v.(*Purchase)
	s.c.Delete(invoicePrefix + invoiceID)
	if b, ok := s.c.Get(buyerPrefix + p.Creator.Key()); ok && b.(string) == invoiceID {
		s.c.Delete(buyerPrefix + p.Creator.Key())
	}
	return p, true
}

// PurchaseOf returns the member's pending purchase.
func (s *Store) PurchaseOf(key string) (Purchase, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.c.Get(buyerPrefix + key)
	if !ok {
		return Purchase{}, false
	}
	p, ok := s.c.Get(invoicePrefix + v.(string))
	if !ok {
		return Purchase{}, false
	}
	return *p.(*Purchase), true
}

// Purchases is every pending purchase (copies), for a stopping kumo to erase their invoices.
func (s *Store) Purchases() []Purchase {
	var out []Purchase
	for k, it := range s.c.Items() {
		if strings.HasPrefix(k, invoicePrefix) {
			out = append(out, *it.Object.(*Purchase))
		}
	}
	return out
}
