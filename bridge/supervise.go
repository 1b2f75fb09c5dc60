package bridge

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// A platform that cannot be reached at start (or later loses its connection for good) is run again
// with backoff while the others carry on; only a rejected credential stops kumo, because no retry
// can fix it.

// PlatformState is how a platform is doing, for /healthz.
type PlatformState string

const (
	// PlatformConnecting: Run has started and the adapter has not said it is connected yet.
	PlatformConnecting PlatformState = "connecting"
	// PlatformUp: the adapter said it is connected (Ready).
	PlatformUp PlatformState = "up"
	// PlatformDown: the last Run failed; it is run again at RetryAt.
	PlatformDown PlatformState = "down"
)

// PlatformStatus is one platform's state. Error is the adapter's error text: adapters keep tokens
// and message text out of their errors.
type PlatformStatus struct {
	Name    string        `json:"-"`
	State   PlatformState `json:"state"`
	Since   time.Time     `json:"since"`
	Error   string        `json:"error,omitempty"`
	RetryAt *time.Time    `json:"retry_at,omitempty"`
}

// ReadyNotifier is implemented by the Handler the bridge hands to Platform.Run: an adapter calls
// Ready(its name) once it is connected (token checked, receiving), so that the bridge can tell "up"
// from "still connecting". An adapter that never calls it stays "connecting" while it runs.
type ReadyNotifier interface {
	Ready(platform string)
}

// health is every platform's status, and whether each has been up or down once yet.
type health struct {
	mu       sync.Mutex
	now      func() time.Time
	status   map[string]*PlatformStatus
	settled  map[string]bool
	started  chan struct{} // closed when every platform has been up or down once
	upInRun  map[string]bool
	platform int
}

func newHealth(now func() time.Time, names []string) *health {
	h := &health{now: now, status: map[string]*PlatformStatus{}, settled: map[string]bool{}, upInRun: map[string]bool{},
		started: make(chan struct{}), platform: len(names)}
	for _, n := range names {
		h.status[n] = &PlatformStatus{Name: n, State: PlatformConnecting, Since: now()}
	}
	if len(names) == 0 {
		close(h.started)
	}
	return h
}

func (h *health) set(name string, st PlatformState, err error, retryAt time.Time) {
	h.setStatus(name, st, err, retryAt, st != PlatformConnecting)
}

// setStatus records a state; settles says it counts as the platform's first outcome for Started.
func (h *health) setStatus(name string, st PlatformState, err error, retryAt time.Time, settles bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.status[name]
	if s == nil {
		return
	}
	if s.State != st {
		s.Since = h.now()
	}
	s.State, s.Error, s.RetryAt = st, "", nil
	if err != nil {
		s.Error = err.Error()
	}
	if !retryAt.IsZero() {
		s.RetryAt = &retryAt
	}
	if st == PlatformUp {
		h.upInRun[name] = true
	}
	if settles && !h.settled[name] {
		h.settled[name] = true
		if len(h.settled) == h.platform {
			close(h.started)
		}
	}
}

// Ready implements ReadyNotifier.
func (b *Bridge) Ready(platform string) {
	b.health.set(platform, PlatformUp, nil, time.Time{})
	b.log.Info("platform connected", "platform", platform)
}

// Platforms is every platform's status, by name.
func (b *Bridge) Platforms() []PlatformStatus {
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	out := make([]PlatformStatus, 0, len(b.health.status))
	for _, s := range b.health.status {
		c := *s
		if s.RetryAt != nil {
			t := *s.RetryAt
			c.RetryAt = &t
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Started is closed once every platform has either connected or failed its first attempt (and is
// being retried): what an operator's "kumo is running" should wait for. A platform whose
// credentials are rejected ends Run with an error instead.
func (b *Bridge) Started() <-chan struct{} { return b.health.started }

// supervise runs p until ctx ends, again after each failure with backoff; a rejected credential
// (ErrUnauthorized) ends it with the error.
func (b *Bridge) supervise(ctx context.Context, name string, p Platform) error {
	wait := b.cfg.Reconnect.Min
	for {
		b.health.mu.Lock()
		b.health.upInRun[name] = false
		b.health.mu.Unlock()
		err := p.Run(ctx, b)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrUnauthorized) {
			// Not settled: Started stays open, so kumo stops with this error before saying it runs.
			b.health.setStatus(name, PlatformDown, err, time.Time{}, false)
			if !strings.HasPrefix(err.Error(), name+":") {
				err = fmt.Errorf("%s: %w", name, err)
			}
			return err
		}
		if err == nil {
			err = errors.New("Run returned before kumo stopped")
		}
		b.health.mu.Lock()
		wasUp := b.health.upInRun[name]
		b.health.mu.Unlock()
		if wasUp {
			wait = b.cfg.Reconnect.Min
		}
		retryAt := b.now().Add(wait)
		b.health.set(name, PlatformDown, err, retryAt)
		b.log.Warn("platform unavailable; the others carry on and it is tried again", "platform", name, "retry_in", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(wait*2, b.cfg.Reconnect.Max)
		b.health.set(name, PlatformConnecting, nil, time.Time{})
	}
}
