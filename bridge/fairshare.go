package bridge

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
)

// Fair shares of a platform's bot-wide budget. Every recipient has a lane of its own (lanes.go), so
// recipients are served side by side, but the platform's bot-wide limit (Telegram's 30 messages a
// second) is one budget for all of them. A first-come limiter hands it out in the order sends ask,
// and a lively room's members ask again the moment each send returns: a quiet room's one message
// queues behind every one of them. So each send carries its class, and a platform's Gate serves the
// waiting sends by class: a person's answer to their own command first, then a message with nothing
// waiting behind it (a quiet room, the first words after a pause), then backlog, which coalescing
// makes cheap to delay (one later send carries what waited). Within a class, first come first
// served: round-robin over the recipients that have work.

// SendClass ranks a send for its platform's bot-wide budget.
type SendClass int

const (
	// SendFresh is a message with nothing queued behind it for its recipient (the zero value).
	SendFresh SendClass = iota
	// SendUrgent is the bot answering the person: a command's result, an invoice.
	SendUrgent
	// SendBacklog is a send from a recipient's backlog.
	SendBacklog
	sendClasses
)

type sendClassKey struct{}

// WithSendClass marks ctx's sends with c; the core does it for every delivery.
func WithSendClass(ctx context.Context, c SendClass) context.Context {
	return context.WithValue(ctx, sendClassKey{}, c)
}

// SendClassOf is the class ctx's sends were marked with: SendFresh when unmarked (an adapter's own
// messages, outside the core's deliveries).
func SendClassOf(ctx context.Context) SendClass {
	if c, ok := ctx.Value(sendClassKey{}).(SendClass); ok && c >= 0 && c < sendClasses {
		return c
	}
	return SendFresh
}

// backlogEvery is how many grants at most go to higher classes in a row while backlog waits, so
// that a platform flooded with fresh messages still drains its backlogs.
const backlogEvery = 4

// Gate is a platform's bot-wide send budget, handed out by SendClass: adapters wait on it where they
// would wait on a rate.Limiter. Its zero value is not usable: call NewGate.
type Gate struct {
	lim *rate.Limiter

	mu      sync.Mutex
	waiting [sendClasses][]chan struct{}
	serving bool // a goroutine hands out tokens while anyone waits
	skipped int  // grants to higher classes in a row while backlog waited
}

// NewGate makes a gate that lets r sends a second through in bursts of burst; rate.Inf lets all.
func NewGate(r rate.Limit, burst int) *Gate {
	return &Gate{lim: rate.NewLimiter(r, max(1, burst))}
}

// Limit is the gate's rate.
func (g *Gate) Limit() rate.Limit { return g.lim.Limit() }

// Wait blocks until the budget lets one send of ctx's class go, or ctx ends.
func (g *Gate) Wait(ctx context.Context) error {
	if g.lim.Limit() == rate.Inf {
		return ctx.Err()
	}
	c := SendClassOf(ctx)
	ch := make(chan struct{})
	g.mu.Lock()
	g.waiting[c] = append(g.waiting[c], ch)
	if !g.serving {
		g.serving = true
		go g.serve()
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		for i, w := range g.waiting[c] {
			if w == ch {
				g.waiting[c] = append(g.waiting[c][:i:i], g.waiting[c][i+1:]...)
				break
			}
		}
		g.mu.Unlock()
		return ctx.Err()
	}
}

// serve hands out one token at a time while anyone waits. It takes the token first and only then
// picks who gets it, so a send that arrived during the wait can still go first.
func (g *Gate) serve() {
	for {
		g.mu.Lock()
		if g.empty() {
			g.serving = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		// Waits at most one token's time; nothing to cancel it for.
		_ = g.lim.Wait(context.Background())
		g.mu.Lock()
		if ch := g.next(); ch != nil {
			close(ch)
		}
		g.mu.Unlock()
	}
}

func (g *Gate) empty() bool {
	for _, w := range g.waiting {
		if len(w) > 0 {
			return false
		}
	}
	return true
}

// next takes the waiter to serve: the highest class, except that backlog goes after backlogEvery
// grants to others in a row. g.mu is held.
func (g *Gate) next() chan struct{} {
	order := []SendClass{SendUrgent, SendFresh, SendBacklog}
	if len(g.waiting[SendBacklog]) > 0 && g.skipped >= backlogEvery {
		order = []SendClass{SendBacklog, SendUrgent, SendFresh}
	}
	for _, c := range order {
		if len(g.waiting[c]) == 0 {
			continue
		}
		ch := g.waiting[c][0]
		g.waiting[c] = g.waiting[c][1:]
		if c != SendBacklog && len(g.waiting[SendBacklog]) > 0 {
			g.skipped++
		} else {
			g.skipped = 0
		}
		return ch
	}
	return nil
}
