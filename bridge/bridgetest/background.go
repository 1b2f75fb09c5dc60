package bridgetest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// StopWait is how long Stop waits for a background run to return after its context ended.
const StopWait = 30 * time.Second

// Running is a lifecycle (a Run(ctx) method) running in the background for the length of a test.
type Running struct {
	t      testing.TB
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	once   sync.Once
}

// Background runs run(ctx) in its own goroutine until Stop is called or the test ends. Stop cancels
// ctx and fails the test if run returned an error or did not return within StopWait. This is the
// one helper every test uses to run a bridge, an adapter or a payment backend.
func Background(t testing.TB, name string, run func(ctx context.Context) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{t: t, name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	t.Cleanup(r.Stop)
	return r
}

// Done is closed when run has returned, early or not; Err is then what it returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err is what run returned; nil while it is running.
func (r *Running) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// Returned reports whether run has returned; a test waiting for something to get ready checks it to
// fail at once (with Err) rather than wait out its deadline.
func (r *Running) Returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Stop ends the run and checks it returned nil in time. It may be called more than once.
func (r *Running) Stop() {
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.done:
			if r.err != nil {
				r.t.Errorf("%s: Run returned %v after its context ended, want nil", r.name, r.err)
			}
		case <-time.After(StopWait):
			r.t.Errorf("%s: Run did not return within %s of its context ending", r.name, StopWait)
		}
	})
}
