package rooms_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/rooms"
)

func TestJoinTokens(t *testing.T) {
	s := newStore(t, rooms.Config{MaxFailures: 3}, nil)
	const pw = "twelve chars!"
	if _, _, err := s.Open(member("a"), pw); err != nil {
		t.Fatal(err)
	}
	many, _, err := s.NewToken(member("a").Key(), false)
	if err != nil {
		t.Fatal(err)
	}
	once, _, err := s.NewToken(member("a").Key(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(many) != rooms.TokenLen || len(once) != rooms.TokenLen || many == once {
		t.Fatalf("tokens %q %q: want two different %d-character tokens", many, once, rooms.TokenLen)
	}
	steps := []struct {
		who, secret string
		want        error
	}{
		{"b", many, nil},
		{"c", many, nil}, // reusable
		{"d", once, nil},
		{"e", once, rooms.ErrWrongPassword}, // used up
		{"f", " " + many + " ", nil},        // pasted with spaces
	}
	for _, st := range steps {
		if _, _, err := s.Join(st.secret, member(st.who), ""); !errors.Is(err, st.want) {
			t.Errorf("%s joins with a token: %v, want %v", st.who, err, st.want)
		}
	}
	// A token is compared exactly: its case is part of its bits.
	if _, _, err := s.Join(flipCase(many), member("g"), ""); !errors.Is(err, rooms.ErrWrongPassword) {
		t.Errorf("token with its case changed: %v, want ErrWrongPassword", err)
	}
	if _, err := s.RevokeTokens(member("b").Key()); !errors.Is(err, rooms.ErrNotCreator) {
		t.Errorf("member revokes: %v, want ErrNotCreator", err)
	}
	if n, err := s.RevokeTokens(member("a").Key()); err != nil || n != 1 {
		t.Errorf("revoke = %d, %v; want the one live token", n, err)
	}
	// Wrong tokens are wrong passwords: they use up the same budget.
	for range 2 {
		if _, _, err := s.Join(many, member("h"), ""); !errors.Is(err, rooms.ErrWrongPassword) {
			t.Fatalf("revoked token: %v, want ErrWrongPassword", err)
		}
	}
	if _, _, err := s.Join("wrong password!", member("h"), ""); !errors.Is(err, rooms.ErrWrongPassword) {
		t.Fatal(err)
	}
	var th *rooms.ThrottledError
	if _, _, err := s.Join(pw, member("h"), ""); !errors.As(err, &th) {
		t.Errorf("after 2 bad tokens and 1 bad password the right password is %v, want throttled", err)
	}
}

func flipCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 32
		case c >= 'A' && c <= 'Z':
			b[i] = c + 32
		}
	}
	return string(b)
}

func TestKickAndLock(t *testing.T) {
	s := newStore(t, rooms.Config{}, nil)
	const pw = "twelve chars!"
	if _, _, err := s.Open(member("a"), pw); err != nil {
		t.Fatal(err)
	}
	_, b, err := s.Join(pw, member("b"), "")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := s.NewToken(member("a").Key(), false)
	a := member("a").Key()
	if _, _, err := s.Kick(member("b").Key(), "whoever"); !errors.Is(err, rooms.ErrNotCreator) {
		t.Errorf("member kicks: %v", err)
	}
	if _, _, err := s.Kick(a, "no such name"); !errors.Is(err, rooms.ErrNoSuchMember) {
		t.Errorf("kick of a stranger: %v", err)
	}
	r, _, _ := s.RoomOf(a)
	if _, _, err := s.Kick(a, r.Members[0].Nick); !errors.Is(err, rooms.ErrKickSelf) {
		t.Errorf("creator kicks themselves: %v", err)
	}
	r, out, err := s.Kick(a, " "+b.Nick+" ")
	if err != nil || out.Key() != b.Key() || len(r.Members) != 1 {
		t.Fatalf("kick = %v, %v, %d members", out, err, len(r.Members))
	}
	if _, _, err := s.RoomOf(b.Key()); !errors.Is(err, rooms.ErrNotInRoom) {
		t.Errorf("kicked member still in the room: %v", err)
	}
	for _, secret := range []string{pw, tok} {
		if _, _, err := s.Join(secret, member("b"), ""); !errors.Is(err, rooms.ErrKicked) {
			t.Errorf("kicked member rejoins: %v, want ErrKicked", err)
		}
	}
	// The same person through another chat is the same identity.
	other := member("b")
	other.Chat = "elsewhere"
	if _, _, err := s.Join(pw, other, ""); !errors.Is(err, rooms.ErrKicked) {
		t.Errorf("kicked member from another chat: %v", err)
	}

	if _, _, err := s.SetLocked(member("b").Key(), true); !errors.Is(err, rooms.ErrNotInRoom) {
		t.Errorf("outsider locks: %v", err)
	}
	if _, changed, err := s.SetLocked(a, true); err != nil || !changed {
		t.Fatalf("lock: %v %v", changed, err)
	}
	if _, changed, _ := s.SetLocked(a, true); changed {
		t.Error("locking a locked room reports a change")
	}
	for _, secret := range []string{pw, tok} {
		if _, _, err := s.Join(secret, member("c"), ""); !errors.Is(err, rooms.ErrLocked) {
			t.Errorf("join while locked: %v, want ErrLocked", err)
		}
	}
	if _, changed, err := s.SetLocked(a, false); err != nil || !changed {
		t.Fatalf("unlock: %v %v", changed, err)
	}
	if _, _, err := s.Join(tok, member("c"), ""); err != nil {
		t.Errorf("join after unlock: %v", err)
	}
}

type timedEvents struct {
	mu      sync.Mutex
	warned  []warning
	closed  time.Time
	closedC chan struct{}
}

type warning struct {
	left time.Duration
	at   time.Time
}

func (e *timedEvents) RoomEnding(_ rooms.Room, left time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.warned = append(e.warned, warning{left, time.Now()})
}

func (e *timedEvents) RoomClosed(rooms.Room, rooms.Reason) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = time.Now()
	close(e.closedC)
}

// TestExtend: after an extension the room ends at its new end, not before, with its warnings moved
// with it; past MaxLifetime nothing changes.
func TestExtend(t *testing.T) {
	ev := &timedEvents{closedC: make(chan struct{})}
	const life = time.Second
	s := newStore(t, rooms.Config{Lifetime: life, MaxLifetime: 2 * life, Warnings: []time.Duration{life / 2}}, ev)
	r, me, err := s.Open(member("a"), "twelve chars!")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CanExtend(me.Key()); err != nil {
		t.Fatalf("CanExtend: %v", err)
	}
	ext, err := s.Extend(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := ext.ExpiresAt.Sub(r.ExpiresAt); got != life {
		t.Errorf("extended by %s, want %s", got, life)
	}
	if _, err := s.CanExtend(me.Key()); !errors.Is(err, rooms.ErrMaxLifetime) {
		t.Errorf("CanExtend past the cap: %v", err)
	}
	if again, err := s.Extend(r.ID); !errors.Is(err, rooms.ErrMaxLifetime) || !again.ExpiresAt.Equal(ext.ExpiresAt) {
		t.Errorf("Extend past the cap: %v, end %s (want %s unchanged)", err, again.ExpiresAt, ext.ExpiresAt)
	}
	select {
	case <-ev.closedC:
	case <-time.After(10 * life):
		t.Fatal("the extended room never ended")
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.closed.Before(ext.ExpiresAt) {
		t.Errorf("room closed %s before its new end", ext.ExpiresAt.Sub(ev.closed))
	}
	if len(ev.warned) != 1 {
		t.Fatalf("warnings %v, want exactly one (the old schedule's must not fire)", ev.warned)
	}
	if w := ev.warned[0]; w.left != life/2 || w.at.Before(ext.ExpiresAt.Add(-w.left)) {
		t.Errorf("warning %s at %s, want %s before the new end %s", w.left, w.at, life/2, ext.ExpiresAt)
	}
	if _, err := s.Extend(r.ID); !errors.Is(err, rooms.ErrRoomGone) {
		t.Errorf("Extend of an ended room: %v, want ErrRoomGone", err)
	}
}

func TestMaxLifetimeConfig(t *testing.T) {
	cases := []struct {
		cfg     rooms.Config
		wantErr bool
		want    time.Duration
	}{
		{rooms.Config{}, false, rooms.DefaultMaxLifetime},
		{rooms.Config{Lifetime: 10 * 24 * time.Hour}, false, 10 * 24 * time.Hour},
		{rooms.Config{Lifetime: time.Hour, MaxLifetime: time.Minute}, true, 0},
	}
	for _, c := range cases {
		s, err := rooms.New(c.cfg, nil)
		if (err != nil) != c.wantErr {
			t.Errorf("%+v: err %v", c.cfg, err)
			continue
		}
		if err == nil && s.Config().MaxLifetime != c.want {
			t.Errorf("%+v: max lifetime %s, want %s", c.cfg, s.Config().MaxLifetime, c.want)
		}
	}
}
