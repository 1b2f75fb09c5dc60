package bridge_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
)

// convoPlatform is countingPlatform with ids, edits and reactions, all instant: the benchmark
// measures the core.
type convoPlatform struct {
	*countingPlatform
	next, edits, reacts atomic.Int64
	lastRelay           sync.Map      // chat -> the id of the last relay it was sent
	changed             chan struct{} // a token after every edit or reaction: the benchmark waits on it, not on a timer
}

func (p *convoPlatform) poke() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *convoPlatform) SendText(ctx context.Context, to bridge.Addr, m bridge.Message) (bridge.MessageID, error) {
	_, _ = p.countingPlatform.SendText(ctx, to, m)
	id := bridge.MessageID(fmt.Sprint(p.next.Add(1)))
	if m.Kind == bridge.KindRelay {
		p.lastRelay.Store(to.Chat, id)
	}
	return id, nil
}
func (p *convoPlatform) EditText(context.Context, bridge.Addr, bridge.MessageID, bridge.Message) error {
	p.edits.Add(1)
	p.poke()
	return nil
}
func (p *convoPlatform) MaxReactions() int    { return 1 }
func (p *convoPlatform) CanReact(string) bool { return true }
func (p *convoPlatform) SetReactions(context.Context, bridge.Addr, bridge.MessageID, []string) error {
	p.reacts.Add(1)
	p.poke()
	return nil
}

// BenchmarkConversation measures one member's edit and one member's reaction relayed to the other 9
// members of a room: ns and allocations per inbound action, copies all edited (or reacted on)
// before the next. Run: go test -tags goolm -run '^$' -bench Conversation -benchmem ./bridge/
func BenchmarkConversation(b *testing.B) {
	for _, tc := range []struct {
		name   string
		action bridge.Action
		count  func(*convoPlatform) int64
	}{
		{"edit", bridge.ActionEdit, func(p *convoPlatform) int64 { return p.edits.Load() }},
		{"react", bridge.ActionReact, func(p *convoPlatform) int64 { return p.reacts.Load() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const size = 10
			p := &convoPlatform{countingPlatform: &countingPlatform{name: "p", ready: make(chan struct{})}, changed: make(chan struct{}, 1)}
			cfg := bridge.DefaultConfig()
			cfg.PriceSat, cfg.FloodRate = 0, 0
			br, ctx := runBench(b, cfg, p, p.countingPlatform)
			users := benchRoom(b, ctx, br, p.countingPlatform, size)
			p.h.HandleInbound(ctx, bridge.Inbound{From: users[0], Text: "the original", ID: "orig"})
			waitUntil(b, func() bool {
				_, ok1 := p.lastRelay.Load(users[1].Chat)
				_, ok2 := p.lastRelay.Load(users[2].Chat)
				return ok1 && ok2 && br.Stats().PendingDeliveries == 0
			})
			emojis := []string{"👍", "🔥"}
			copyOf := func(u bridge.Addr) bridge.MessageID {
				id, _ := p.lastRelay.Load(u.Chat)
				return id.(bridge.MessageID)
			}
			copies := []bridge.MessageID{copyOf(users[1]), copyOf(users[2])}

			b.ReportAllocs()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				in := bridge.Inbound{From: users[0], Action: tc.action, Target: "orig", ID: "orig"}
				if tc.action == bridge.ActionEdit {
					in.Text = fmt.Sprint("edit ", i)
				} else {
					// Alternate two reactors and two emoji so every action changes something.
					in.From, in.Emoji, in.Target = users[1+i%2], emojis[(i/2)%2], copies[i%2]
					if (i/4)%2 == 1 {
						in.Action = bridge.ActionUnreact
					}
				}
				want := tc.count(p) + size - 1
				p.h.HandleInbound(ctx, in)
				for tc.count(p) < want {
					<-p.changed
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "allocs/action")
			b.ReportMetric(elapsed.Seconds()*1e9/float64(b.N), "ns/action")
		})
	}
}
