package rooms

import (
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
}

// purchaseGrace keeps a purchase a little past its invoice's expiry, so the backend's own "expired"
// report still finds it and the buyer is told.
const purchaseGrace = time.Minute

// AddPurchase records a pending purchase. A person has one at a time: the one it replaces, if any,
// is returned so its invoice can be cancelled.
func (s *Store) AddPurchase(p Purchase) (replaced Purchase, ok bool) {
	key := p.Creator.Key()
	ttl := time.Until(p.ExpiresAt) + purchaseGrace
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, found := s.c.Get(buyerPrefix + key); found {
		if old, found := s.c.Get(invoicePrefix + v.(string)); found {
			replaced, ok = *old.(*Purchase), true
			s.c.Delete(invoicePrefix + replaced.InvoiceID)
		}
	}
	cp := p
	s.c.Set(invoicePrefix+p.InvoiceID, &cp, ttl)
	s.c.Set(buyerPrefix+key, p.InvoiceID, ttl)
	return replaced, ok
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
