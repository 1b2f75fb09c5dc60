package rooms

import (
	"fmt"
	"math"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Guess limits. A room's password is its only lock, and every guess is checked against every live
// room at once, so guesses are counted where an attacker cannot reset them by making a new identity:
//
//   - per person (MaxFailures per FailureWindow, a fixed window from the first failure): a person who
//     mistypes is told how many tries are left;
//   - per origin (MaxFailuresPerOrigin, or MaxFailuresPerHomeserver for "hs:" origins): a web
//     client's network or a Matrix homeserver, where identities cost nothing;
//   - globally (MaxFailuresGlobal): everyone together, the bound that holds against any number of
//     identities and origins.
//
// The origin and global limits are token buckets (golang.org/x/time/rate, already kumo's flood
// limiter): a bucket of `budget` tokens refilled at budget per FailureWindow, so a burst of mistakes
// is forgiven at once and a sustained attack gets exactly the budgeted rate. Its *At methods take the
// store's clock, which keeps the tests deterministic. A bucket is consulted before the password is
// looked at: an attempt past a limit is answered "wait" whatever the password, so waiting attempts
// tell an attacker nothing (no oracle). Members already in rooms never pass through here.
//
// Over a room's lifetime L a token bucket lets through at most budget × (1 + L/FailureWindow)
// guesses: with the defaults 1,000 × (1 + 24h/15m) = 97,000. MinGuesses turns that into the strength a
// chosen password needs.

// Origin prefixes. Adapters prefix Inbound.Origin with the kind of source it is; a "hs:" origin (a
// Matrix homeserver) serves many people and gets the larger MaxFailuresPerHomeserver budget. Any other
// non-empty origin ("ip:203.0.113.7", "ip:2001:db8:1:2::/64") gets MaxFailuresPerOrigin.
const (
	OriginIPPrefix         = "ip:"
	OriginHomeserverPrefix = "hs:"
)

// maxTrackedOrigins caps the origin buckets held at once. It is a backstop: a bucket is only made by a
// counted failure, and the global budget bounds those to about 2 × MaxFailuresGlobal per window. Past
// the cap, new origins share one bucket (stricter for them, never looser).
const maxTrackedOrigins = 100_000

const overflowOrigin = "\x00overflow"

// strengthMargin is how many times harder than a lifetime of guessing at the global budget a chosen
// password must be: guesses are tried against every live room at once (a thousand rooms make a guess
// a thousand times likelier to hit one), and zxcvbn's estimate is of a smart attacker, not the best.
// 10^7 keeps the chance that a full lifetime of guessing opens any one of 1,000 live rooms below 1 in
// 10,000.
const strengthMargin = 1e7

// maxMinGuesses is the most MinGuesses may demand: kumo's generated passwords (75.9 bits, zxcvbn
// estimates 10^25 and more) must always pass.
const maxMinGuesses = 1e20

// MinGuesses is the zxcvbn guesses estimate a chosen password needs: what a room's longest life
// (MaxLifetime, which /extend can reach) of guessing at the global budget can try, times
// strengthMargin. Defaults: 1,000 × (1 + 672) × 10^7 = 6.7 × 10^12.
func (c Config) MinGuesses() float64 {
	c = c.withDefaults()
	// A room may live up to MaxLifetime (/extend), and its password is guessable all that time.
	lifetimeGuesses := float64(c.MaxFailuresGlobal) * (1 + float64(c.MaxLifetime)/float64(c.FailureWindow))
	return lifetimeGuesses * strengthMargin
}

// Scope says which limit made an attempt wait.
type Scope int

const (
	// ScopePerson: this person sent too many wrong passwords.
	ScopePerson Scope = iota + 1
	// ScopeOrigin: too many wrong passwords came from the person's origin (network, homeserver).
	ScopeOrigin
	// ScopeGlobal: too many wrong passwords came from everyone together.
	ScopeGlobal
)

func (s Scope) String() string {
	switch s {
	case ScopePerson:
		return "person"
	case ScopeOrigin:
		return "origin"
	case ScopeGlobal:
		return "global"
	}
	return "unknown"
}

// ThrottledError means too many wrong passwords: try again after RetryIn. The password was not
// checked.
type ThrottledError struct {
	RetryIn time.Duration
	Scope   Scope
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many wrong passwords (%s), try again in %s", e.Scope, e.RetryIn.Round(time.Second))
}

// failures is one person's wrong passwords in the window that started at their first.
type failures struct {
	n     int
	until time.Time
}

func perWindow(n int, window time.Duration) rate.Limit {
	return rate.Limit(float64(n) / window.Seconds())
}

func (s *Store) originBudget(origin string) int {
	if strings.HasPrefix(origin, OriginHomeserverPrefix) {
		return s.cfg.MaxFailuresPerHomeserver
	}
	return s.cfg.MaxFailuresPerOrigin
}

// wait is how long until lim has a token again.
func wait(lim *rate.Limiter, now time.Time) (time.Duration, bool) {
	tok := lim.TokensAt(now)
	if tok >= 1 {
		return 0, false
	}
	d := time.Duration(math.Ceil((1 - tok) / float64(lim.Limit()) * float64(time.Second)))
	return max(d, time.Second), true
}

func (s *Store) originLimiter(origin string) (*rate.Limiter, bool) {
	v, ok := s.origins.Get(origin)
	if !ok && s.origins.ItemCount() >= maxTrackedOrigins {
		v, ok = s.origins.Get(overflowOrigin)
	}
	if !ok {
		return nil, false
	}
	return v.(*rate.Limiter), true
}

// throttled says whether an attempt from key and origin must wait, and for how long. Callers hold mu.
func (s *Store) throttled(key, origin string) error {
	now := s.now()
	if v, ok := s.c.Get(failurePrefix + key); ok {
		f := v.(*failures)
		if f.n >= s.cfg.MaxFailures && now.Before(f.until) {
			return &ThrottledError{RetryIn: max(f.until.Sub(now), time.Second), Scope: ScopePerson}
		}
	}
	if origin != "" {
		if lim, ok := s.originLimiter(origin); ok {
			if d, must := wait(lim, now); must {
				return &ThrottledError{RetryIn: d, Scope: ScopeOrigin}
			}
		}
	}
	if d, must := wait(s.global, now); must {
		return &ThrottledError{RetryIn: d, Scope: ScopeGlobal}
	}
	return nil
}

// count records one answered guess that did not join, everywhere. Callers hold mu.
func (s *Store) count(key, origin string) {
	now := s.now()
	f := &failures{until: now.Add(s.cfg.FailureWindow)}
	if v, ok := s.c.Get(failurePrefix + key); ok && now.Before(v.(*failures).until) {
		f = v.(*failures)
	}
	f.n++
	// The cache item outlives the window by the clock go-cache reads; what decides is f.until.
	s.c.Set(failurePrefix+key, f, s.cfg.FailureWindow)
	if origin != "" {
		lim, ok := s.originLimiter(origin)
		if !ok {
			b := s.originBudget(origin)
			lim = rate.NewLimiter(perWindow(b, s.cfg.FailureWindow), b)
			if s.origins.ItemCount() >= maxTrackedOrigins {
				origin = overflowOrigin
			}
		} else if _, own := s.origins.Get(origin); !own {
			origin = overflowOrigin
		}
		lim.AllowN(now, 1)
		// Refreshed on every failure: a bucket left alone for a whole window is full again, and
		// forgetting it then changes nothing.
		s.origins.Set(origin, lim, s.cfg.FailureWindow)
	}
	s.global.AllowN(now, 1)
}

// TrackedOrigins is how many origins have a guess bucket held (metrics, tests).
func (s *Store) TrackedOrigins() int { return s.origins.ItemCount() }

// FailuresLeft is how many more wrong passwords the member may send before being made to wait.
func (s *Store) FailuresLeft(key string) int {
	v, ok := s.c.Get(failurePrefix + key)
	if !ok || !s.now().Before(v.(*failures).until) {
		return s.cfg.MaxFailures
	}
	return max(s.cfg.MaxFailures-v.(*failures).n, 0)
}

// CheckChosen says whether a password someone chose for a new room is free, and counts the question
// as a guess wherever Join would count a wrong password: the answer ("in use" or not) tells as much as
// a join attempt does, so it is limited like one, and past a limit it is not answered at all
// (*ThrottledError). Passwords kumo draws itself need no such check (PasswordFree).
func (s *Store) CheckChosen(password, key, origin string) error {
	pwKey := s.keyOf(password)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.throttled(key, origin); err != nil {
		return err
	}
	s.count(key, origin)
	if !s.passwordFree(pwKey) {
		return ErrPasswordTaken
	}
	return nil
}
