package bridge

import (
	"context"
	"sync"
	"testing"

	"golang.org/x/time/rate"
)

// The order in which a gate serves waiting sends: urgent, then fresh, then backlog, but backlog at
// least every backlogEvery+1 grants while others keep coming.
func TestGateServesByClass(t *testing.T) {
	tests := []struct {
		name    string
		waiting []SendClass // in arrival order
		want    []SendClass // in grant order
	}{
		{"one class is first come first served", []SendClass{SendBacklog, SendBacklog}, []SendClass{SendBacklog, SendBacklog}},
		{"a quiet room's message passes a backlog", []SendClass{SendBacklog, SendBacklog, SendFresh}, []SendClass{SendFresh, SendBacklog, SendBacklog}},
		{"an answer passes everything", []SendClass{SendBacklog, SendFresh, SendUrgent}, []SendClass{SendUrgent, SendFresh, SendBacklog}},
		{"backlog is never starved", []SendClass{SendBacklog, SendFresh, SendFresh, SendFresh, SendFresh, SendFresh, SendUrgent},
			[]SendClass{SendUrgent, SendFresh, SendFresh, SendFresh, SendBacklog, SendFresh, SendFresh}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGate(1, 1)
			class := map[chan struct{}]SendClass{}
			for _, c := range tc.waiting {
				ch := make(chan struct{})
				class[ch] = c
				g.waiting[c] = append(g.waiting[c], ch)
			}
			var got []SendClass
			for range tc.waiting {
				got = append(got, class[g.next()])
			}
			if len(got) != len(tc.want) {
				t.Fatalf("served %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("served %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestGateLetsEveryoneThroughAndForgetsTheCancelled(t *testing.T) {
	g := NewGate(rate.Limit(2000), 1)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			ctx := WithSendClass(context.Background(), SendClass(i%3))
			if err := g.Wait(ctx); err != nil {
				t.Errorf("wait: %v", err)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Wait(ctx); err == nil {
		t.Fatal("a cancelled wait returned nil")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.empty() {
		t.Fatalf("the cancelled waiter is still queued: %v", g.waiting)
	}
}
