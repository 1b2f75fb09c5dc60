package bridgetest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
)

// Pacing is a messenger's send limits: at most PerChat messages a second into one chat in bursts of
// PerChatBurst, and Global a second over all chats in bursts of GlobalBurst. Zero rates mean none.
type Pacing struct {
	PerChat      rate.Limit
	PerChatBurst int
	Global       rate.Limit
	GlobalBurst  int
}

// pacer plays both sides of a real messenger's limits. Like an adapter, it waits before each send
// until its pacing allows it (golang.org/x/time/rate, as the adapters do); like the platform's
// server, it checks every send as it arrives against the platform's limits, with token buckets of
// its own, and counts what exceeds them: a violation is what a real platform answers with a 429.
// Sends to different chats may arrive in another order than they were paced (as over a network),
// which is why a platform's limit has bursts the adapter's pacing does not use.
type pacer struct {
	cfg    Pacing // the adapter's pacing
	limit  Pacing // the server's limits
	global *bridge.Gate

	mu         sync.Mutex
	chats      map[string]*rate.Limiter
	server     map[string]*bucket // per chat, and "" for the bot as a whole
	violations int
}

// bucket is the server's view: tokens refill at rate up to burst; a send takes one.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, r rate.Limit, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*float64(r))
	}
	b.last = now
	if b.tokens < 1-1e-9 {
		return false
	}
	b.tokens--
	return true
}

// SetPacing makes the platform pace its sends like an adapter paced at pace, and count the sends that
// break limit, the platform's own limits (Violations). It may be called while the core runs.
func (p *Platform) SetPacing(pace, limit Pacing) {
	pc := &pacer{cfg: pace, limit: limit, chats: map[string]*rate.Limiter{}, server: map[string]*bucket{}}
	c := pace
	if c.Global > 0 {
		pc.global = bridge.NewGate(c.Global, c.GlobalBurst)
	}
	p.mu.Lock()
	p.pacer = pc
	p.mu.Unlock()
}

// Violations is how many sends went past the pacing's limits (what a real platform answers 429).
func (p *Platform) Violations() int {
	p.mu.Lock()
	pc := p.pacer
	p.mu.Unlock()
	if pc == nil {
		return 0
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.violations
}

// wait holds a send to chat until the pacing allows it.
func (pc *pacer) wait(ctx context.Context, chat string) error {
	if pc.cfg.PerChat > 0 {
		pc.mu.Lock()
		l := pc.chats[chat]
		if l == nil {
			l = rate.NewLimiter(pc.cfg.PerChat, max(1, pc.cfg.PerChatBurst))
			pc.chats[chat] = l
		}
		pc.mu.Unlock()
		if err := l.Wait(ctx); err != nil {
			return fmt.Errorf("pacing: %w", err)
		}
	}
	if pc.global != nil {
		if err := pc.global.Wait(ctx); err != nil {
			return fmt.Errorf("pacing: %w", err)
		}
	}
	return nil
}

// check is the server's side: it counts a send that breaks a limit.
func (pc *pacer) check(chat string, now time.Time) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	ok := true
	if pc.limit.PerChat > 0 {
		b := pc.server[chat]
		if b == nil {
			b = &bucket{}
			pc.server[chat] = b
		}
		ok = b.take(now, pc.limit.PerChat, max(1, pc.limit.PerChatBurst))
	}
	if pc.limit.Global > 0 {
		b := pc.server["\x00global"]
		if b == nil {
			b = &bucket{}
			pc.server["\x00global"] = b
		}
		ok = b.take(now, pc.limit.Global, max(1, pc.limit.GlobalBurst)) && ok
	}
	if !ok {
		pc.violations++
	}
}

// Hold makes every send wait until release is called (which Hold returns; later calls do nothing),
// so that a test can build up a recipient's backlog deterministically. Held says how many wait.
func (p *Platform) Hold() (release func()) {
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.gate == gate {
				p.gate = nil
			}
			p.mu.Unlock()
			close(gate)
		})
	}
}

// WaitHeld waits until n sends are waiting at the hold.
func (p *Platform) WaitHeld(t interface {
	Helper()
	Fatalf(string, ...any)
}, n int) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		held, changed := p.held, p.changed
		p.mu.Unlock()
		if held >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: %d sends held, want %d", p.name, held, n)
			return
		}
	}
}

// admit runs before every send: the hold, then the pacing.
func (p *Platform) admit(ctx context.Context, to bridge.Addr) error {
	p.mu.Lock()
	gate, pc := p.gate, p.pacer
	if gate != nil {
		p.held++
		p.wake()
	}
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
		p.mu.Lock()
		p.held--
		p.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if pc != nil {
		if err := pc.wait(ctx, to.Chat); err != nil {
			return err
		}
		pc.check(to.Chat, time.Now())
	}
	return nil
}
