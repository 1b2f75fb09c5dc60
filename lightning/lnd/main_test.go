package lnd_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/lightning/lnd/lndtest"
)

// One real regtest network (btcd, kumo's lnd, a payer's lnd with a channel to it) for the whole
// package: starting it takes about 15 s.
var (
	netw *lndtest.Network
	// kumoMacaroon is baked with exactly lnd.Permissions: every test runs kumo with it, which is the
	// proof that those permissions are enough.
	kumoMacaroon string
)

func TestMain(m *testing.M) {
	os.Exit(lndtest.Main(m, func(ctx context.Context, n *lndtest.Network) (err error) {
		netw = n
		kumoMacaroon, err = n.BakeKumoMacaroon(ctx, "kumo", lnd.Permissions...)
		return err
	}))
}

const price = 1000 // sat

// testCtx bounds one test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testLog(t *testing.T) (*slog.Logger, *bridgetest.LogBuffer) {
	buf := &bridgetest.LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func kumoConfig(addr string) lnd.Config {
	return lnd.Config{Address: addr, TLSCert: netw.Kumo.TLSCertPath(), Macaroon: kumoMacaroon}
}

// recorder is the notify function of Run, recording every event.
type recorder struct {
	mu      sync.Mutex
	events  []bridge.PaymentEvent
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) notify(ev bridge.PaymentEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) count(id string, state bridge.PaymentState) int {
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

func (r *recorder) all() []bridge.PaymentEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// wait waits until the event was reported, and returns when it was.
func (r *recorder) wait(t *testing.T, id string, state bridge.PaymentState, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		found := slices.Contains(r.events, bridge.PaymentEvent{ID: id, State: state})
		r.mu.Unlock()
		if found {
			return time.Now()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s event for %s within %s; got %v", state, id[:8], timeout, r.all())
		}
	}
}

// running is a Backend whose Run is going.
type running struct {
	*lnd.Backend
	rec  *recorder
	logs *bridgetest.LogBuffer
	stop func()
}

// startBackend connects a backend to kumo's node at addr (its RPC address, or a proxy in front of it)
// and runs it until the test ends or stop is called.
func startBackend(t *testing.T, addr string) *running {
	t.Helper()
	log, logs := testLog(t)
	b, err := lnd.New(testCtx(t), kumoConfig(addr), log)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Backend: b, rec: newRecorder(), logs: logs}
	run := bridgetest.Background(t, "lnd backend", func(ctx context.Context) error { return b.Run(ctx, r.rec.notify) })
	r.stop = func() {
		run.Stop()
		b.Close()
	}
	t.Cleanup(r.stop)
	return r
}
