package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/rooms"
)

// fakeClock is the core's clock in the attack tests: the guess limits refill only when the test
// moves it, so what is counted does not depend on how fast the machine is.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Answers to a guess.
const (
	answerWrong = "o live room has that password" // "No live room..." and "..., and no live room..."
	answerBusy  = "Busy:"
)

// attacker sends guesses, each from an identity never seen before.
type attacker struct {
	p      *bridgetest.Platform
	origin func(i int) string
	n      int
}

// guess sends count guesses ("/join <text>" or the text alone) and returns how many were checked
// (answered "no live room") and how many were refused unchecked ("busy"), once every one is answered.
func (a *attacker) guess(t *testing.T, count int, text func(i int) string) (checked, busy int) {
	t.Helper()
	first := a.n
	for range count {
		u := a.p.User(fmt.Sprint("attacker-", a.n))
		a.p.SayFrom(t, u, a.origin(a.n), text(a.n))
		a.n++
	}
	for i := first; i < a.n; i++ {
		ms := a.p.WaitFor(t, a.p.User(fmt.Sprint("attacker-", i)).Chat, wait, "an answer", func(ms []bridge.Message) bool { return len(ms) > 0 })
		switch {
		case strings.Contains(ms[0].Text, answerWrong) || strings.Contains(ms[0].Text, "already in use"):
			checked++
		case strings.Contains(ms[0].Text, answerBusy) && strings.Contains(ms[0].Text, "Try again in"):
			busy++
		default:
			t.Fatalf("guess %d answered %q", i, ms[0].Text)
		}
	}
	return checked, busy
}

// An attacker with a fresh identity per guess, from one network, one homeserver or many networks,
// gets no more guesses checked than the origin's budget, or the global budget, allow; the right
// password joins once the wait is over; and members in rooms keep talking throughout.
func TestGuessingWithFreshIdentities(t *testing.T) {
	const window = 15 * time.Minute
	cases := []struct {
		name   string
		origin func(i int) string
		budget int // the limit that binds
	}{
		{"one ip", func(int) string { return rooms.OriginIPPrefix + "203.0.113.7" }, 6},
		{"one homeserver", func(int) string { return rooms.OriginHomeserverPrefix + "evil.example" }, 12},
		{"many ips", func(i int) string { return fmt.Sprintf("%s198.51.%d.%d", rooms.OriginIPPrefix, i/250, i%250) }, 20},
		{"no origin", func(int) string { return "" }, 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock()
			h := start(t, func(cfg *bridge.Config) {
				cfg.PriceSat = 0
				cfg.Now = clk.Now
				cfg.Rooms.FailureWindow = window
				cfg.Rooms.MaxFailuresPerOrigin = 6
				cfg.Rooms.MaxFailuresPerHomeserver = 12
				cfg.Rooms.MaxFailuresGlobal = 20
			})
			alice, bob, password := h.aliceAndBob(t)
			aliceNick := nickOf(t, h, alice)

			a := &attacker{p: h.dc, origin: c.origin}
			total, refused := 0, 0
			for round := range 3 {
				checked, busy := a.guess(t, c.budget, func(i int) string { return fmt.Sprintf("/join guess number %06d", i) })
				total += checked
				if total > c.budget {
					t.Fatalf("round %d: %d guesses checked in all, budget %d", round, total, c.budget)
				}
				if round > 0 && checked != 0 {
					t.Fatalf("round %d: %d more guesses checked with no time passing", round, checked)
				}
				refused += busy
				// Members keep relaying during the attack.
				text := fmt.Sprintf("still here, round %d", round)
				h.tg.Say(t, alice, text)
				h.dc.WaitFor(t, bob.Chat, wait, "alice's message", hasRelay(aliceNick, text))
			}
			if total != c.budget {
				t.Fatalf("%d guesses checked, want exactly the budget %d", total, c.budget)
			}
			// Past the limit even the right password is not looked at, so it tells nothing.
			late := h.dc.User("late")
			h.dc.SayFrom(t, late, c.origin(a.n), password)
			h.dc.WaitText(t, late.Chat, "Try again in")
			refused++
			if _, _, err := h.b.Store().RoomOf(late.Key()); err == nil {
				t.Fatal("a join was checked past the limit")
			}

			// Half a window refills half the budget: the sustained rate is budget per window.
			clk.Add(window / 2)
			checked, busy := a.guess(t, c.budget, func(i int) string { return fmt.Sprintf("guess number %06d", i) })
			if checked < c.budget/2-1 || checked > c.budget/2 {
				t.Fatalf("after half a window %d guesses checked, want about %d", checked, c.budget/2)
			}
			refused += busy
			// Every "busy" answer is counted (kumo_join_attempts_throttled_total).
			if n := h.b.Stats().JoinAttemptsThrottled; n != uint64(refused) {
				t.Fatalf("Stats().JoinAttemptsThrottled = %d, want the %d attempts answered busy", n, refused)
			}
			// Once the wait is over the right password joins, from the attacked origin too.
			clk.Add(window)
			h.dc.SayFrom(t, late, c.origin(a.n), password)
			h.dc.WaitText(t, late.Chat, "You joined")
		})
	}
}

// Asking /newroom for a password that is in use is a guess: counted per person, per origin and
// globally, refused unanswered past a limit, and it makes no invoice.
func TestNewroomInUseIsCountedAsAGuess(t *testing.T) {
	clk := newFakeClock()
	h := start(t, func(cfg *bridge.Config) {
		cfg.Now = clk.Now
		cfg.Rooms.MaxFailuresPerOrigin = 4
	})
	alice := h.tg.User("alice")
	const pw = "purple elephants dance at noon"
	h.openRoom(t, h.tg, alice, pw)
	created := h.b.Stats().InvoicesCreated

	// One person: five answers, then the person's own limit.
	mallory := h.dc.User("mallory")
	for i := range 5 {
		h.dc.Say(t, mallory, "/newroom "+pw)
		h.dc.WaitFor(t, mallory.Chat, wait, "an answer", func(ms []bridge.Message) bool { return len(ms) == i+1 })
	}
	h.dc.Say(t, mallory, "/newroom "+pw)
	got := h.dc.WaitFor(t, mallory.Chat, wait, "six answers", func(ms []bridge.Message) bool { return len(ms) == 6 })
	for i, m := range got {
		want := "already in use"
		if i == 5 {
			want = "Too many wrong passwords. Try again in 1"
		}
		if !strings.Contains(m.Text, want) {
			t.Fatalf("answer %d: %q, want %q", i, m.Text, want)
		}
	}
	// Fresh identities from one origin share its budget, with wrong joins too.
	a := &attacker{p: h.dc, origin: func(int) string { return "ip:192.0.2.1" }}
	checked, busy := a.guess(t, 3, func(int) string { return "/newroom " + pw })
	checked2, busy2 := a.guess(t, 3, func(i int) string { return fmt.Sprintf("/join guess number %06d", i) })
	if checked+checked2 != 4 || busy+busy2 != 2 {
		t.Fatalf("%d+%d checked and %d+%d refused, want 4 checked (the origin's budget) and 2 refused", checked, checked2, busy, busy2)
	}
	if n := h.b.Stats().InvoicesCreated; n != created {
		t.Fatalf("%d invoices made for passwords in use", n-created)
	}
}

// Chosen passwords a room's lifetime of guessing could find are refused, with the reason and a
// strong one offered instead; no invoice is made for them.
func TestWeakChosenPasswordsAreRefused(t *testing.T) {
	h := start(t, nil)
	u := h.tg.User("u")
	for _, pw := range []string{"password1234", "correcthorsebatterystaple", "qwertyuiop123"} {
		t.Run(pw, func(t *testing.T) {
			before := len(h.tg.Messages(u.Chat))
			h.tg.Say(t, u, "/newroom "+pw)
			got := h.tg.WaitFor(t, u.Chat, wait, "the refusal and an offer", func(ms []bridge.Message) bool { return len(ms) >= before+2 })
			if !strings.Contains(got[before].Text, "too easy to guess") || !strings.Contains(got[before].Text, "guesses") {
				t.Fatalf("refusal %q does not say why", got[before].Text)
			}
			offer := got[before+1].Code
			if err := h.b.Store().CheckStrength(offer); offer == "" || err != nil {
				t.Fatalf("offered %q: %v", offer, err)
			}
		})
	}
	if n := h.b.Stats().InvoicesCreated; n != 0 {
		t.Fatalf("%d invoices made for weak passwords", n)
	}
}

// Unpaid invoices are capped per origin and in all, however many identities ask; paying one frees
// its place.
func TestUnpaidInvoiceCaps(t *testing.T) {
	h := start(t, func(cfg *bridge.Config) {
		cfg.Rooms.MaxPendingPerOrigin = 3
		cfg.Rooms.MaxPendingGlobal = 5
	})
	ask := func(id, origin, want string) *bridge.Invoice {
		t.Helper()
		u := h.dc.User(id)
		h.dc.SayFrom(t, u, origin, "/newroom")
		got := h.dc.WaitFor(t, u.Chat, wait, want, func(ms []bridge.Message) bool { return len(ms) > 0 })
		if !strings.Contains(got[len(got)-1].Text, want) {
			t.Fatalf("%s from %q: %q, want %q", id, origin, got[len(got)-1].Text, want)
		}
		return got[len(got)-1].Invoice
	}
	first := ask("a1", "ip:192.0.2.1", "Pay 10,000 sat")
	ask("a2", "ip:192.0.2.1", "Pay 10,000 sat")
	ask("a3", "ip:192.0.2.1", "Pay 10,000 sat")
	ask("a4", "ip:192.0.2.1", "too many unpaid invoices are waiting from your network")
	ask("b1", "ip:192.0.2.2", "Pay 10,000 sat")
	ask("c1", "", "Pay 10,000 sat")
	ask("d1", "ip:192.0.2.4", "too many unpaid invoices are waiting right now")
	if n := h.dev.Held(); n != 5 {
		t.Fatalf("the backend holds %d invoices, want the 5 the caps allow", n)
	}
	if err := h.dev.Pay(context.Background(), first.ID); err != nil {
		t.Fatal(err)
	}
	h.dc.WaitText(t, h.dc.User("a1").Chat, "Your room is open")
	ask("a5", "ip:192.0.2.1", "Pay 10,000 sat")
}
