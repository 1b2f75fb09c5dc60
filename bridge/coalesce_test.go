package bridge_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
)

// room3 opens a free room with alice (tg, the sender), bob (dc, the recipient under test) and carol
// (tg), and returns alice's pseudonym.
func room3(t *testing.T, h *harness) (alice, bob, carol bridge.Addr, nick string) {
	t.Helper()
	alice, bob, carol = h.tg.User("alice"), h.dc.User("bob"), h.tg.User("carol")
	pw := h.openRoom(t, h.tg, alice, "")
	h.dc.Say(t, bob, pw)
	h.dc.WaitText(t, bob.Chat, "You joined")
	h.tg.Say(t, carol, pw)
	h.tg.WaitText(t, carol.Chat, "You joined")
	h.dc.WaitFor(t, bob.Chat, wait, "carol's arrival", func(ms []bridge.Message) bool {
		for _, m := range ms {
			if m.Kind == bridge.KindNotice && strings.Contains(m.Text, "joined") {
				return true
			}
		}
		return false
	})
	queuedUntil(t, h, 0)
	return alice, bob, carol, nickOf(t, h, alice)
}

// queuedUntil waits until exactly n messages wait in recipients' queues.
func queuedUntil(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for h.b.Stats().QueuedMessages != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages queued, want %d", h.b.Stats().QueuedMessages, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBacklogGoesOutCombinedInOrder(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	var combined atomic.Int64
	h.b.ObserveDeliveries(func(ev bridge.DeliveryEvent) {
		if ev.To.Platform == "dc" && ev.Kind == bridge.KindRelay && ev.Combined > 1 {
			combined.Add(1)
		}
	})
	alice, bob, _, nick := room3(t, h)
	release := h.dc.Hold()
	h.tg.Say(t, alice, "m0")
	h.dc.WaitHeld(t, 1) // m0 is being sent: what follows waits behind it
	for i := 1; i <= 5; i++ {
		h.tg.Say(t, alice, fmt.Sprint("m", i))
	}
	queuedUntil(t, h, 5)
	before := len(h.dc.Messages(bob.Chat))
	release()
	got := h.dc.WaitFor(t, bob.Chat, wait, "six relays", func(ms []bridge.Message) bool { return len(relays(ms)) == 6 })
	sends := got[before-1:] // m0 was recorded after the release too
	var texts []string
	for _, m := range relays(got) {
		if m.From != nick {
			t.Fatalf("relayed as %q, want %q", m.From, nick)
		}
		texts = append(texts, m.Text)
	}
	if want := "m0 m1 m2 m3 m4 m5"; strings.Join(texts, " ") != want {
		t.Fatalf("bob read %q, want %q", strings.Join(texts, " "), want)
	}
	// m0 went alone (nothing waited behind it yet); the five behind it went as one send.
	if last := got[len(got)-1]; len(last.Lines) != 5 || last.Kind != bridge.KindRelay {
		t.Fatalf("the backlog was not combined into one send:\n%s", bridgetest.Dump(sends))
	}
	// The observer hears of a send once it returned, just after the platform recorded it.
	for deadline := time.Now().Add(wait); combined.Load() < 5 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if combined.Load() != 5 {
		t.Errorf("observer saw %d relays delivered combined, want 5", combined.Load())
	}
}

func TestWithoutBacklogEveryMessageGoesAlone(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob, _, nick := room3(t, h)
	for i := range 5 {
		text := fmt.Sprint("m", i)
		h.tg.Say(t, alice, text)
		h.dc.WaitFor(t, bob.Chat, wait, text, hasRelay(nick, text))
	}
	for _, m := range h.dc.Messages(bob.Chat) {
		if len(m.Lines) > 0 {
			t.Fatalf("a message was combined with nothing waiting: %+v", m)
		}
	}
}

// Only relayed words are combined; a notice keeps its place among them and a person's answer to
// their own command overtakes the relayed backlog.
func TestNoticesAndRepliesAreNeverCombined(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob, carol, _ := room3(t, h)
	release := h.dc.Hold()
	h.tg.Say(t, alice, "a0")
	h.dc.WaitHeld(t, 1)
	h.tg.Say(t, alice, "a1")
	h.tg.Say(t, alice, "a2")
	queuedUntil(t, h, 2)
	h.tg.Say(t, carol, "/leave") // a notice to bob (and alice), behind a1 and a2
	h.tg.WaitText(t, carol.Chat, "You left")
	h.tg.Say(t, alice, "a3")
	h.tg.Say(t, alice, "a4")
	queuedUntil(t, h, 5)
	h.dc.Say(t, bob, "/help") // bob's own answer: before the backlog
	queuedUntil(t, h, 6)
	release()
	got := h.dc.WaitFor(t, bob.Chat, wait, "everything", func(ms []bridge.Message) bool {
		return len(relays(ms)) == 5 && strings.Contains(bridgetest.Dump(ms), "/leave")
	})
	var shape []string
	for _, m := range got {
		switch {
		case m.Kind == bridge.KindRelay && len(m.Lines) > 0:
			var ts []string
			for _, l := range m.Lines {
				ts = append(ts, l.Text)
			}
			shape = append(shape, "["+strings.Join(ts, ",")+"]")
		case m.Kind == bridge.KindRelay:
			shape = append(shape, m.Text)
		case m.Kind == bridge.KindNotice && strings.Contains(m.Text, "left"):
			shape = append(shape, "left")
		case m.Kind == bridge.KindReply && strings.Contains(m.Text, "/leave"):
			shape = append(shape, "help")
		}
	}
	// a0 was in flight; bob's answer overtakes the relayed backlog; the notice keeps its place
	// between a2 and a3 and is never part of a combined send.
	if got, want := strings.Join(shape, " "), "a0 help [a1,a2] left [a3,a4]"; got != want {
		t.Fatalf("bob's chat: %s, want %s", got, want)
	}
}

func TestDelayedSendersAreToldOnce(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	h := start(t, func(c *bridge.Config) {
		c.PriceSat = 0
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
		c.DelayWarning = 5 * time.Second
	})
	alice, bob, carol, nick := room3(t, h)
	release := h.dc.Hold()
	h.tg.Say(t, alice, "a0")
	h.dc.WaitHeld(t, 1)
	h.tg.Say(t, alice, "a1")
	h.tg.WaitFor(t, carol.Chat, wait, "a1", hasRelay(nick, "a1")) // carol keeps up
	queuedUntil(t, h, 1)                                          // a1 waits for bob
	now.Add(int64(6 * time.Second))                               // a1 has waited longer than DelayWarning
	h.tg.Say(t, alice, "a2")
	warning := h.tg.WaitText(t, alice.Chat, "Your messages are delayed")
	if warning.Kind != bridge.KindReply || !strings.Contains(warning.Text, "busier than Dc lets kumo deliver") {
		t.Fatalf("warning: %+v", warning)
	}
	h.tg.Say(t, alice, "a3")
	queuedUntil(t, h, 3)
	release()
	got := h.dc.WaitFor(t, bob.Chat, wait, "four relays", func(ms []bridge.Message) bool { return len(relays(ms)) >= 4 })
	var texts []string
	for _, m := range relays(got) {
		texts = append(texts, m.Text)
	}
	if strings.Join(texts, " ") != "a0 a1 a2 a3" {
		t.Fatalf("bob read %v", texts)
	}
	warnings := 0
	for _, m := range h.tg.Messages(alice.Chat) {
		if strings.Contains(m.Text, "delayed") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Fatalf("alice was warned %d times, want once (rate-limited)", warnings)
	}
}

// A combined send never exceeds what the platform takes in one message, however its limits count.
func TestCombinedSendsFitTheLimits(t *testing.T) {
	tests := []struct {
		name string
		lim  bridge.Limits
	}{
		{"tight", bridge.Limits{MaxText: 80, Overhead: 4, LineOverhead: 3}},
		{"markup counted twice", bridge.Limits{MaxText: 200, Overhead: 10, LineOverhead: 4, TextLen: func(s string) int { return 2 * len(s) }}},
		{"roomy", bridge.Limits{MaxText: 4096}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bridge.DefaultConfig()
			cfg.PriceSat, cfg.FloodRate = 0, 0
			src, dst := bridgetest.New("src", bridge.Limits{MaxText: 4096}), bridgetest.New("dst", tc.lim)
			b, err := bridge.New(cfg, nil, nil, src, dst)
			if err != nil {
				t.Fatal(err)
			}
			bridgetest.Run(t, b)
			alice, bob := src.User("alice"), dst.User("bob")
			src.Say(t, alice, "/newroom")
			pw := src.WaitText(t, alice.Chat, "Your room is open").Code
			dst.Say(t, bob, pw)
			dst.WaitText(t, bob.Chat, "You joined")
			for deadline := time.Now().Add(wait); b.Stats().PendingDeliveries > 0; { // a long answer's later parts
				if time.Now().After(deadline) {
					t.Fatal("answers never delivered")
				}
				time.Sleep(time.Millisecond)
			}
			release := dst.Hold()
			const n = 30
			for i := range n {
				src.Say(t, alice, fmt.Sprintf("message %02d", i))
			}
			// Alice's later command is answered only once everything she sent before was relayed.
			src.Say(t, alice, "/help")
			src.WaitText(t, alice.Chat, "/leave")
			release()
			got := dst.WaitFor(t, bob.Chat, wait, "every relay", func(ms []bridge.Message) bool { return len(relays(ms)) == n })
			for i, m := range relays(got) {
				if want := fmt.Sprintf("message %02d", i); m.Text != want {
					t.Fatalf("relay %d is %q, want %q", i, m.Text, want)
				}
			}
			combinedSends := 0
			for _, m := range got {
				if len(m.Lines) == 0 {
					continue
				}
				combinedSends++
				size := tc.lim.Overhead
				for i, l := range m.Lines {
					size += tc.lim.Len(l.From+": "+l.Text) + tc.lim.LineOverhead
					if i > 0 {
						size += tc.lim.Len("\n")
					}
				}
				if size > tc.lim.MaxText {
					t.Errorf("a combined send of %d lines measures %d, over MaxText %d", len(m.Lines), size, tc.lim.MaxText)
				}
			}
			if combinedSends == 0 {
				t.Fatalf("nothing was combined:\n%s", bridgetest.Dump(got))
			}
		})
	}
}

// A text of several lines goes alone (adapters quote it under its sender's name; a quote inside a
// combined send could run on over other members' lines).
func TestTextsOfSeveralLinesGoAlone(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob, _, _ := room3(t, h)
	release := h.dc.Hold()
	h.tg.Say(t, alice, "a0")
	h.dc.WaitHeld(t, 1)
	for _, text := range []string{"a1", "a2", "two\nlines", "a3", "a4"} {
		h.tg.Say(t, alice, text)
	}
	queuedUntil(t, h, 5)
	release()
	got := h.dc.WaitFor(t, bob.Chat, wait, "six relays", func(ms []bridge.Message) bool { return len(relays(ms)) == 6 })
	var shape []string
	for _, m := range got {
		switch {
		case m.Kind == bridge.KindRelay && len(m.Lines) > 0:
			var ts []string
			for _, l := range m.Lines {
				ts = append(ts, l.Text)
			}
			shape = append(shape, "["+strings.Join(ts, ",")+"]")
		case m.Kind == bridge.KindRelay:
			shape = append(shape, strings.ReplaceAll(m.Text, "\n", "/"))
		}
	}
	if got, want := strings.Join(shape, " "), "a0 [a1,a2] two/lines [a3,a4]"; got != want {
		t.Fatalf("bob's chat: %s, want %s", got, want)
	}
}

// A platform that sends as often as it likes (Limits.SendsAlone, the web page) gets a backlog one
// message per send: combining would save nothing, and every message keeps an id of its own.
func TestPlatformsThatSendAloneGetNoCombinedSends(t *testing.T) {
	cfg := testConfig(free)
	logs, log := debugLog()
	h := &harness{
		dev:  lightning.NewDev(log),
		tg:   bridgetest.New("tg", bridge.Limits{MaxText: 4096}),
		dc:   bridgetest.New("dc", bridge.Limits{MaxText: 2000, SendsAlone: true}),
		logs: logs,
	}
	h.run(t, cfg, log, h.tg, h.dc)
	alice, bob, _, nick := room3(t, h)
	release := h.dc.Hold()
	h.tg.Say(t, alice, "m0")
	h.dc.WaitHeld(t, 1)
	for i := 1; i <= 5; i++ {
		h.tg.Say(t, alice, fmt.Sprint("m", i))
	}
	queuedUntil(t, h, 5)
	release()
	got := h.dc.WaitFor(t, bob.Chat, wait, "six relays", func(ms []bridge.Message) bool { return len(relays(ms)) == 6 })
	var texts []string
	for _, m := range got {
		if len(m.Lines) > 0 {
			t.Fatalf("a combined send reached a platform that sends alone:\n%s", bridgetest.Dump(got))
		}
		if m.Kind == bridge.KindRelay && m.From == nick {
			texts = append(texts, m.Text)
		}
	}
	if want := "m0 m1 m2 m3 m4 m5"; strings.Join(texts, " ") != want {
		t.Fatalf("bob read %q, want %q", strings.Join(texts, " "), want)
	}
}
