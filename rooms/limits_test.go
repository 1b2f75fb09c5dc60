package rooms_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/rooms"
)

// clock is a hand-moved clock for the limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// guess tries one wrong password from a fresh identity and reports whether it was checked.
func guess(t *testing.T, s *rooms.Store, id, origin string) (checked bool, th *rooms.ThrottledError) {
	t.Helper()
	_, _, err := s.Join("not the password "+id, member(id), origin)
	switch {
	case errors.Is(err, rooms.ErrWrongPassword):
		return true, nil
	case errors.As(err, &th):
		return false, th
	}
	t.Fatalf("guess %s: %v", id, err)
	return false, nil
}

// Fresh identities do not reset the limits: the origin's budget and the global budget hold, waiting
// attempts are not checked, and the budget refills with time.
func TestGuessLimitsHoldAgainstFreshIdentities(t *testing.T) {
	const window = 10 * time.Minute
	cases := []struct {
		name      string
		origin    func(i int) string
		budget    int
		wantScope rooms.Scope
	}{
		{"one ip", func(int) string { return "ip:203.0.113.7" }, 4, rooms.ScopeOrigin},
		{"one homeserver", func(int) string { return "hs:evil.example" }, 8, rooms.ScopeOrigin},
		{"many origins", func(i int) string { return fmt.Sprintf("ip:198.51.100.%d", i) }, 12, rooms.ScopeGlobal},
		{"no origin (Telegram, Discord)", func(int) string { return "" }, 12, rooms.ScopeGlobal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			s := newStore(t, rooms.Config{FailureWindow: window, MaxFailuresPerOrigin: 4, MaxFailuresPerHomeserver: 8,
				MaxFailuresGlobal: 12, Now: clk.Now}, nil)
			const pw = "the right password, at last"
			if _, _, err := s.Open(member("creator"), pw); err != nil {
				t.Fatal(err)
			}
			n := 0
			checked := 0
			for range 3 * c.budget {
				ok, th := guess(t, s, fmt.Sprint("a", n), c.origin(n))
				n++
				if ok {
					checked++
					continue
				}
				if th.Scope != c.wantScope || th.RetryIn < time.Second || th.RetryIn > window {
					t.Fatalf("throttle %+v, want scope %s and a wait within the window", th, c.wantScope)
				}
			}
			if checked != c.budget {
				t.Fatalf("%d guesses checked, want the budget %d", checked, c.budget)
			}
			// Past the limit even the right password waits: the answer must not depend on it.
			_, _, err := s.Join(pw, member("late"), c.origin(n))
			var th *rooms.ThrottledError
			if !errors.As(err, &th) {
				t.Fatalf("the right password was checked past the limit: %v", err)
			}
			// The bucket refills at budget per window: after the wait, exactly one more guess.
			clk.Add(th.RetryIn)
			if ok, _ := guess(t, s, fmt.Sprint("a", n), c.origin(n)); !ok {
				t.Fatal("no guess checked after the wait")
			}
			n++
			if ok, _ := guess(t, s, fmt.Sprint("a", n), c.origin(n)); ok {
				t.Fatal("two guesses checked after one token's wait")
			}
			n++
			// After a whole window the budget is back, and the right password joins.
			clk.Add(window)
			if _, _, err := s.Join(pw, member("late"), c.origin(n)); err != nil {
				t.Fatalf("the right password after the wait: %v", err)
			}
		})
	}
}

// One origin's attack does not lock out another origin until the global budget is spent.
func TestOriginBudgetIsPerOrigin(t *testing.T) {
	s := newStore(t, rooms.Config{MaxFailuresPerOrigin: 2, MaxFailuresGlobal: 100, Now: newClock().Now}, nil)
	for i := range 5 {
		guess(t, s, fmt.Sprint("x", i), "ip:192.0.2.1")
	}
	if ok, th := guess(t, s, "y", "ip:192.0.2.2"); !ok {
		t.Fatalf("another origin is throttled: %+v", th)
	}
}

// Asking /newroom whether a password is free is a guess too: counted, and not answered past a limit.
func TestCheckChosenCounts(t *testing.T) {
	s := newStore(t, rooms.Config{MaxFailuresPerOrigin: 3, MaxFailuresGlobal: 100, Now: newClock().Now}, nil)
	const pw = "the right password, at last"
	if _, _, err := s.Open(member("creator"), pw); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		id, password string
		want         error
	}{
		{"p1", "some other password", nil},
		{"p2", pw, rooms.ErrPasswordTaken},
		{"p3", "yet another one", nil},
	}
	for _, st := range steps {
		if err := s.CheckChosen(st.password, member(st.id).Key(), "ip:192.0.2.9"); !errors.Is(err, st.want) {
			t.Fatalf("%s: %v, want %v", st.id, err, st.want)
		}
	}
	var th *rooms.ThrottledError
	if err := s.CheckChosen(pw, member("p4").Key(), "ip:192.0.2.9"); !errors.As(err, &th) || th.Scope != rooms.ScopeOrigin {
		t.Fatalf("a fourth question from the origin: %v, want it throttled unanswered", err)
	}
	if _, _, err := s.Join(pw, member("p5"), "ip:192.0.2.9"); !errors.As(err, &th) {
		t.Fatalf("joins from the origin share the budget: %v", err)
	}
}

func TestPendingPurchaseCaps(t *testing.T) {
	s := newStore(t, rooms.Config{MaxPendingPerOrigin: 2, MaxPendingGlobal: 3}, nil)
	exp := time.Now().Add(time.Minute)
	buy := func(id, origin string) error {
		_, _, err := s.AddPurchase(rooms.Purchase{InvoiceID: "inv-" + id + "-" + fmt.Sprint(time.Now().UnixNano()), Creator: member(id), Password: "x", ExpiresAt: exp, Origin: origin})
		return err
	}
	steps := []struct {
		name, id, origin string
		want             error
	}{
		{"first from an origin", "a", "ip:1", nil},
		{"second from it", "b", "ip:1", nil},
		{"third from it", "c", "ip:1", rooms.ErrTooManyPendingOrigin},
		{"a person replacing their own does not count twice", "b", "ip:1", nil},
		{"another origin", "d", "ip:2", nil},
		{"global cap", "e", "ip:3", rooms.ErrTooManyPending},
		{"global cap without origin", "f", "", rooms.ErrTooManyPending},
	}
	for _, st := range steps {
		if err := s.CanPurchase(member(st.id).Key(), st.origin); !errors.Is(err, st.want) {
			t.Fatalf("%s: CanPurchase %v, want %v", st.name, err, st.want)
		}
		if err := buy(st.id, st.origin); !errors.Is(err, st.want) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.want)
		}
	}
	if s.Pending() != 3 {
		t.Fatalf("%d pending, want 3", s.Pending())
	}
	p, ok := s.PurchaseOf(member("a").Key())
	if !ok {
		t.Fatal("a's purchase is gone")
	}
	s.TakePurchase(p.InvoiceID)
	if err := buy("c", "ip:1"); err != nil {
		t.Fatalf("a paid purchase frees its place: %v", err)
	}
}

func TestCheckStrength(t *testing.T) {
	s := newStore(t, rooms.Config{}, nil)
	cases := []struct {
		password string
		want     error
	}{
		{"password1234", rooms.ErrPasswordGuessable},
		{"correcthorsebatterystaple", rooms.ErrPasswordGuessable},
		{"Correct Horse Battery Staple", rooms.ErrPasswordGuessable},
		{"qwertyuiop123", rooms.ErrPasswordGuessable},
		{"aaaaaaaaaaaaaaaa", rooms.ErrPasswordGuessable},
		{"123456789012", rooms.ErrPasswordGuessable},
		{"iloveyou2026!", rooms.ErrPasswordGuessable},
		{"short", rooms.ErrPasswordTooWeak},
		{"purple elephants dance at noon", nil},
		{"zq8#Lm2!vRt9wK", nil},
	}
	for _, c := range cases {
		err := s.CheckStrength(c.password)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("CheckStrength(%q) = %v, want %v", c.password, err, c.want)
		}
		if errors.Is(err, rooms.ErrPasswordGuessable) && !strings.Contains(err.Error(), "guesses") {
			t.Errorf("CheckStrength(%q) does not say why: %v", c.password, err)
		}
	}
	for range 200 {
		if p := rooms.GeneratePassword(); s.CheckStrength(p) != nil {
			t.Fatalf("a generated password is refused: %v", s.CheckStrength(p))
		}
	}
}

func TestStrengthIsSizedToTheGlobalBudget(t *testing.T) {
	d := rooms.DefaultConfig()
	if got, want := d.MinGuesses(), 1000*(1+7*24*4)*1e7; got != want {
		t.Fatalf("MinGuesses %g, want %g", got, want)
	}
	loose := d
	loose.MaxFailuresGlobal = 1e12
	if err := loose.Validate(); err == nil || !strings.Contains(err.Error(), "rooms.max_failures_global") {
		t.Fatalf("a global budget no password can withstand was accepted: %v", err)
	}
}

// A flood of guesses from ever new origins holds no more counters than the global budget lets
// guesses through: a bucket is only made by a counted failure.
func TestGuessCountersStayBounded(t *testing.T) {
	s := newStore(t, rooms.Config{MaxFailuresGlobal: 50, Now: newClock().Now}, nil)
	for i := range 5000 {
		guess(t, s, fmt.Sprint("g", i), fmt.Sprintf("ip:10.0.%d.%d", i/256, i%256))
	}
	if n := s.TrackedOrigins(); n != 50 {
		t.Fatalf("%d origins tracked after 5,000 guesses from new origins, want the 50 the global budget let through", n)
	}
}

// Guessing creator keys with fresh identities meets the same origin budget as guessing passwords.
func TestCreatorKeyGuessesShareTheLimits(t *testing.T) {
	s := newStore(t, rooms.Config{MaxFailuresPerOrigin: 3, MaxFailuresGlobal: 100, Now: newClock().Now}, nil)
	const origin = "ip:192.0.2.50"
	for i := range 2 {
		guess(t, s, fmt.Sprint("p", i), origin)
	}
	if _, err := s.Reclaim("kumo-aaaaaaaaaaaaaaaaaaaaaaaaaa", member("k1"), origin); !errors.Is(err, rooms.ErrWrongCreatorKey) {
		t.Fatalf("first key guess: %v", err)
	}
	var th *rooms.ThrottledError
	if _, err := s.Reclaim("kumo-bbbbbbbbbbbbbbbbbbbbbbbbbb", member("k2"), origin); !errors.As(err, &th) || th.Scope != rooms.ScopeOrigin {
		t.Fatalf("a key guess past the origin's budget: %v", err)
	}
}
