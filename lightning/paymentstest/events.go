package paymentstest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
)

// Events records what a backend's Run reported; Notify is the notify function to hand it. The zero
// value is ready to use. Every payment backend's tests share it.
type Events struct {
	mu      sync.Mutex
	events  []bridge.PaymentEvent
	changed chan struct{} // closed and replaced at each event
}

// Notify records ev.
func (r *Events) Notify(ev bridge.PaymentEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Count is how many times id was reported in state (backends may replay events).
func (r *Events) Count(id string, state bridge.PaymentState) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.ID == id && ev.State == state {
			n++
		}
	}
	return n
}

// All is every event so far, in order.
func (r *Events) All() []bridge.PaymentEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Wait waits until id was reported in state and returns when it saw it; it fails the test after
// timeout.
func (r *Events) Wait(t testing.TB, id string, state bridge.PaymentState, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		found := slices.Contains(r.events, bridge.PaymentEvent{ID: id, State: state})
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		if found {
			return time.Now()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s event for %.8s within %s; got %v", state, id, timeout, r.All())
		}
	}
}
