package bridge_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/rooms"
)

// countingPlatform delivers instantly and only counts: the benchmark measures the core, not a fake.
type countingPlatform struct {
	name      string
	delivered atomic.Int64
	mu        sync.Mutex
	h         bridge.Handler
	ready     chan struct{}
	code      atomic.Value // the last Code shown: the room password
}

func (p *countingPlatform) Name() string          { return p.name }
func (p *countingPlatform) Limits() bridge.Limits { return bridge.Limits{MaxText: 4096} }
func (p *countingPlatform) Run(ctx context.Context, h bridge.Handler) error {
	p.mu.Lock()
	p.h = h
	p.mu.Unlock()
	close(p.ready)
	<-ctx.Done()
	return nil
}
func (p *countingPlatform) SendText(ctx context.Context, to bridge.Addr, m bridge.Message) (bridge.MessageID, error) {
	// The room's open message shows the password and, once, the creator key: keep the password.
	if m.Code != "" && !rooms.LooksLikeCreatorKey(m.Code) {
		p.code.Store(m.Code)
	}
	// Under backlog the core combines relayed messages into one send (Lines): count messages.
	p.delivered.Add(int64(max(1, len(m.Lines))))
	return "", nil
}
func (p *countingPlatform) SendImage(ctx context.Context, to bridge.Addr, img bridge.Image, m bridge.Message) ([]bridge.MessageID, error) {
	p.delivered.Add(1)
	return nil, nil
}

// BenchmarkRelayFanOut measures deliveries per second through the core into one room, and the
// allocations each delivery costs. Run: go test -run '^$' -bench RelayFanOut -benchmem ./bridge/
func BenchmarkRelayFanOut(b *testing.B) {
	for _, size := range []int{10, 50} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			p := &countingPlatform{name: "p", ready: make(chan struct{})}
			cfg := bridge.DefaultConfig()
			cfg.PriceSat, cfg.FloodRate = 0, 0
			br, ctx := runBench(b, cfg, p, p)
			users := benchRoom(b, ctx, br, p, size)
			// Let the join notices drain before measuring.
			waitUntil(b, func() bool { return br.Stats().PendingDeliveries == 0 })
			base := p.delivered.Load()
			perMsg := int64(size - 1)

			b.ReportAllocs()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.ResetTimer()
			start := time.Now()
			// Senders take turns; a batch never exceeds what one sender's queue holds.
			const batch = 32
			for sent := 0; sent < b.N; {
				n := min(batch*size, b.N-sent)
				for i := range n {
					p.h.HandleInbound(ctx, bridge.Inbound{From: users[(sent+i)%size], Text: "hello 👋"})
				}
				sent += n
				want := base + int64(sent)*perMsg
				for p.delivered.Load() < want {
					time.Sleep(50 * time.Microsecond)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			deliveries := float64(b.N) * float64(perMsg)
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/deliveries, "allocs/delivery")
			b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(elapsed.Seconds()*1e9/deliveries, "ns/delivery")
		})
	}
}

// runBench runs a core over plat, whose counting part is cp, until the benchmark (each of its runs)
// ends, and returns once the core has started the platform.
func runBench(b *testing.B, cfg bridge.Config, plat bridge.Platform, cp *countingPlatform) (*bridge.Bridge, context.Context) {
	b.Helper()
	br, err := bridge.New(cfg, nil, nil, plat)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = br.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	<-cp.ready
	return br, ctx
}

// benchRoom opens a room of size members on cp, the first its creator, and returns their addresses
// once all have joined.
func benchRoom(b *testing.B, ctx context.Context, br *bridge.Bridge, cp *countingPlatform, size int) []bridge.Addr {
	b.Helper()
	users := make([]bridge.Addr, size)
	for i := range users {
		users[i] = bridge.Addr{Platform: "p", User: fmt.Sprint("u", i), Chat: fmt.Sprint("c", i)}
	}
	cp.h.HandleInbound(ctx, bridge.Inbound{From: users[0], Text: "/newroom"})
	waitUntil(b, func() bool { r, _ := br.Store().Counts(); return r == 1 })
	waitUntil(b, func() bool { return cp.code.Load() != nil })
	pw := cp.code.Load().(string)
	for _, u := range users[1:] {
		cp.h.HandleInbound(ctx, bridge.Inbound{From: u, Text: pw})
	}
	waitUntil(b, func() bool { _, m := br.Store().Counts(); return m == size })
	return users
}

func waitUntil(b *testing.B, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// guessPlatform answers instantly and sorts the core's answers to guesses.
type guessPlatform struct {
	countingPlatform
	checked, busy, answered atomic.Int64
}

func (p *guessPlatform) SendText(ctx context.Context, to bridge.Addr, m bridge.Message) (bridge.MessageID, error) {
	switch {
	case strings.Contains(m.Text, "o live room has that password"):
		p.checked.Add(1)
	case strings.Contains(m.Text, "Try again in"):
		p.busy.Add(1)
	}
	p.answered.Add(1)
	return p.countingPlatform.SendText(ctx, to, m)
}

// BenchmarkGuessing measures what an attacker with a fresh identity per guess gets through the core
// against the default limits (rooms.max_failures_per_origin 20, rooms.max_failures_global 1,000 per
// 15m), from one origin and from a new origin per guess: accepted-guesses/s are guesses whose
// password was checked (answered "no live room has that password"), answers/s everything the core
// answered (mostly "busy, try again in ..."). Accepted guesses are bounded by the budgets whatever
// the run's length, so accepted-guesses/s falls as the run grows.
// Run: go test -tags goolm -run '^$' -bench Guessing -benchtime 20000x ./bridge/
func BenchmarkGuessing(b *testing.B) {
	for _, c := range []struct {
		name   string
		origin func(i int) string
	}{
		{"one-origin", func(int) string { return "ip:203.0.113.7" }},
		{"many-origins", func(i int) string { return fmt.Sprintf("ip:10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := &guessPlatform{countingPlatform: countingPlatform{name: "p", ready: make(chan struct{})}}
			cfg := bridge.DefaultConfig()
			cfg.PriceSat = 0
			br, ctx := runBench(b, cfg, p, &p.countingPlatform)
			p.h.HandleInbound(ctx, bridge.Inbound{From: bridge.Addr{Platform: "p", User: "creator", Chat: "creator"}, Text: "/newroom"})
			waitUntil(b, func() bool { r, _ := br.Store().Counts(); return r == 1 })
			waitUntil(b, func() bool { return br.Stats().PendingDeliveries == 0 })
			base := p.answered.Load()
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)

			b.ResetTimer()
			start := time.Now()
			const batch = 256
			for sent := 0; sent < b.N; {
				n := min(batch, b.N-sent)
				for i := range n {
					id := fmt.Sprint("guesser-", sent+i)
					p.h.HandleInbound(ctx, bridge.Inbound{From: bridge.Addr{Platform: "p", User: id, Chat: id}, Origin: c.origin(sent + i),
						Text: fmt.Sprintf("/join guess number %08d", sent+i)})
				}
				sent += n
				for p.answered.Load() < base+int64(sent) {
					time.Sleep(50 * time.Microsecond)
				}
			}
			elapsed := time.Since(start).Seconds()
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			// What the guesses left behind in memory right after the run (counters, flood limiters of
			// the fresh identities, which expire within seconds).
			b.ReportMetric((float64(m1.HeapAlloc)-float64(m0.HeapAlloc))/float64(b.N), "retained-B/guess")
			b.ReportMetric(float64(p.checked.Load())/elapsed, "accepted-guesses/s")
			b.ReportMetric(float64(b.N)/elapsed, "answers/s")
			b.ReportMetric(float64(p.checked.Load()), "accepted-guesses")
		})
	}
}
