package bridgetest

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

// Inbox is a bridge.Handler that records what an adapter hands the core, for adapter tests. The zero
// value is ready to use.
type Inbox struct {
	mu      sync.Mutex
	got     []bridge.Inbound
	changed chan struct{} // closed and replaced at each arrival
	taken   int           // how many Next has returned
}

// HandleInbound implements bridge.Handler.
func (r *Inbox) HandleInbound(_ context.Context, in bridge.Inbound) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, in)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// All is everything received so far, in order.
func (r *Inbox) All() []bridge.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Inbound(nil), r.got...)
}

// Count is how many messages were received.
func (r *Inbox) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Wait returns everything received once there are at least n messages; it fails the test when ctx
// ends first.
func (r *Inbox) Wait(t testing.TB, ctx context.Context, n int) []bridge.Inbound {
	t.Helper()
	for {
		r.mu.Lock()
		got := append([]bridge.Inbound(nil), r.got...)
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the handler got %d of %d messages: %v", len(got), n, ctx.Err())
		}
	}
}

// Next waits for the first message no earlier Next returned.
func (r *Inbox) Next(t testing.TB, ctx context.Context) bridge.Inbound {
	t.Helper()
	r.mu.Lock()
	n := r.taken
	r.mu.Unlock()
	in := r.Wait(t, ctx, n+1)[n]
	r.mu.Lock()
	r.taken = n + 1
	r.mu.Unlock()
	return in
}

// SameInbound reports whether got is want, their attachments compared by kind, and by name where
// want names one (attachments hold functions, which cannot be compared).
func SameInbound(got, want bridge.Inbound) bool {
	if len(got.Attachments) != len(want.Attachments) {
		return false
	}
	for i, w := range want.Attachments {
		if g := got.Attachments[i]; g.Kind != w.Kind || (w.Name != "" && g.Name != w.Name) {
			return false
		}
	}
	got.Attachments, want.Attachments = nil, nil
	return reflect.DeepEqual(got, want)
}
