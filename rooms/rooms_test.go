package rooms_test

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/rooms"
)

type events struct {
	mu     sync.Mutex
	closed []rooms.Reason
	ending []time.Duration
	done   chan struct{}
}

func (e *events) RoomEnding(r rooms.Room, left time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ending = append(e.ending, left)
}

func (e *events) RoomClosed(r rooms.Room, why rooms.Reason) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = append(e.closed, why)
	if e.done != nil {
		close(e.done)
		e.done = nil
	}
}

func member(id string) rooms.Member {
	return rooms.Member{Platform: "p", User: id, Chat: "c" + id}
}

func newStore(t testing.TB, cfg rooms.Config, ev rooms.Events) *rooms.Store {
	t.Helper()
	s, err := rooms.New(cfg, ev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestStoreLifecycle(t *testing.T) {
	ev := &events{}
	s := newStore(t, rooms.Config{MaxMembers: 3}, ev)
	const pw = "twelve chars!"
	r, creator, err := s.Open(member("a"), pw)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"creator cannot open a second room", func() error { _, _, err := s.Open(member("a"), "another password"); return err }, rooms.ErrAlreadyInRoom},
		{"password must be unique", func() error { _, _, err := s.Open(member("z"), "TWELVE  chars!"); return err }, rooms.ErrPasswordTaken},
		{"password must be long", func() error { _, _, err := s.Open(member("z"), "short"); return err }, rooms.ErrPasswordTooWeak},
		{"wrong password", func() error { _, _, err := s.Join("nope nope nope", member("b"), ""); return err }, rooms.ErrWrongPassword},
		{"join", func() error { _, _, err := s.Join(pw, member("b"), ""); return err }, nil},
		{"join twice", func() error { _, _, err := s.Join(pw, member("b"), ""); return err }, rooms.ErrAlreadyInRoom},
		{"third member", func() error { _, _, err := s.Join(" Twelve Chars! ", member("c"), ""); return err }, nil},
		{"full", func() error { _, _, err := s.Join(pw, member("d"), ""); return err }, rooms.ErrRoomFull},
		{"leave", func() error { _, _, err := s.Leave(member("c").Key()); return err }, nil},
		{"leave twice", func() error { _, _, err := s.Leave(member("c").Key()); return err }, rooms.ErrNotInRoom},
		{"rename to a taken name", func() error { _, _, _, err := s.Rename(member("b").Key(), strings.ToLower(creator.Nick)); return err }, rooms.ErrNickTaken},
		{"rename", func() error { _, _, _, err := s.Rename(member("b").Key(), "Blue Heron"); return err }, nil},
		{"non-creator destroy", func() error { _, err := s.Destroy(member("b").Key()); return err }, rooms.ErrNotCreator},
		{"destroy", func() error { _, err := s.Destroy(member("a").Key()); return err }, nil},
		{"gone", func() error { _, _, err := s.RoomOf(member("b").Key()); return err }, rooms.ErrNotInRoom},
	}
	for _, st := range steps {
		if err := st.do(); !errors.Is(err, st.want) {
			t.Fatalf("%s: got %v, want %v", st.name, err, st.want)
		}
	}
	if len(ev.closed) != 1 || ev.closed[0] != rooms.Destroyed {
		t.Fatalf("closed events: %v", ev.closed)
	}
	if !s.PasswordFree(pw) {
		t.Fatal("the password of a destroyed room is still taken")
	}
	if n, m := s.Counts(); n != 0 || m != 0 {
		t.Fatalf("counts %d %d", n, m)
	}
	_ = r
}

func TestRoomExpiresWithWarnings(t *testing.T) {
	done := make(chan struct{})
	ev := &events{done: done}
	s := newStore(t, rooms.Config{Lifetime: 1500 * time.Millisecond, Warnings: []time.Duration{time.Second, time.Hour}}, ev)
	r, _, err := s.Open(member("a"), "a long password")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the room never expired")
	}
	if time.Now().Before(r.ExpiresAt) {
		t.Fatal("the room closed early")
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.ending) != 1 || ev.ending[0] != time.Second || len(ev.closed) != 1 || ev.closed[0] != rooms.Expired {
		t.Fatalf("warnings %v, closed %v (a warning longer than the lifetime must be skipped)", ev.ending, ev.closed)
	}
	if _, _, err := s.RoomOf(member("a").Key()); !errors.Is(err, rooms.ErrNotInRoom) {
		t.Fatal("membership survived expiry")
	}
}

func TestThrottle(t *testing.T) {
	s := newStore(t, rooms.Config{MaxFailures: 3, FailureWindow: time.Hour}, nil)
	if _, _, err := s.Open(member("a"), "the right password"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := s.Join("wrong password!", member("m"), ""); !errors.Is(err, rooms.ErrWrongPassword) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, _, err := s.Join("the right password", member("m"), "")
	var th *rooms.ThrottledError
	if !errors.As(err, &th) || th.RetryIn < 59*time.Minute {
		t.Fatalf("want a throttle of about an hour, got %v", err)
	}
	if s.FailuresLeft(member("m").Key()) != 0 || s.FailuresLeft(member("x").Key()) != 3 {
		t.Fatal("FailuresLeft")
	}
}

func TestConcurrentJoinsRespectCapacity(t *testing.T) {
	s := newStore(t, rooms.Config{MaxMembers: 10}, nil)
	if _, _, err := s.Open(member("a"), "the right password"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	joined := 0
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Join("the right password", member(fmt.Sprint("u", i)), ""); err == nil {
				mu.Lock()
				joined++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r, _, _ := s.RoomOf(member("a").Key())
	if joined != 9 || len(r.Members) != 10 {
		t.Fatalf("%d joined, %d members; want 9 and 10", joined, len(r.Members))
	}
}

func TestCleanNick(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"  Blue   Heron ", "Blue Heron", true},
		{"🦄 Unicorn", "🦄 Unicorn", true},
		{"東京タワー", "東京タワー", true},
		{"x", "", false},
		{strings.Repeat("a", 33), "", false},
		{"🔔 Notice", "", false},
		{"Bob: hi", "", false},
		{"@everyone", "", false},
		{"**bold**", "", false},
		{"evil\u202eeman", "evileman", true}, // the bidi override is invisible, so it is removed
		{"zero\u200bwidth", "zerowidth", true},
		{"Kumo Bot", "", false},
		{"the admin", "", false},
	}
	for _, c := range cases {
		got, err := rooms.CleanNick(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("CleanNick(%q) = %q, %v", c.in, got, err)
		}
	}
}

func TestGeneratedPasswords(t *testing.T) {
	shape := regexp.MustCompile(`^([bdfghjklmnprstvz][aeiou]){3}(-([bdfghjklmnprstvz][aeiou]){3}){3}$`)
	seen := map[string]bool{}
	for range 1000 {
		p := rooms.GeneratePassword()
		if !shape.MatchString(p) || rooms.CheckPassword(p) != nil {
			t.Fatalf("bad password %q", p)
		}
		if seen[p] {
			t.Fatalf("repeated password %q", p)
		}
		seen[p] = true
	}
}

func TestPurchasesAreTakenOnce(t *testing.T) {
	s := newStore(t, rooms.Config{}, nil)
	p := rooms.Purchase{InvoiceID: "inv1", Creator: member("a"), Password: "x", ExpiresAt: time.Now().Add(time.Minute)}
	if _, replaced, _ := s.AddPurchase(p); replaced {
		t.Fatal("nothing to replace")
	}
	p2 := p
	p2.InvoiceID = "inv2"
	if old, replaced, _ := s.AddPurchase(p2); !replaced || old.InvoiceID != "inv1" {
		t.Fatal("the second purchase should replace the first")
	}
	if _, ok := s.TakePurchase("inv1"); ok {
		t.Fatal("a replaced purchase can still be taken")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	takes := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := s.TakePurchase("inv2"); ok {
				mu.Lock()
				takes++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if takes != 1 {
		t.Fatalf("taken %d times", takes)
	}
}

// BenchmarkMemory measures the heap a live room of five costs: run with -benchtime=100000x for the
// figure of 100,000 rooms. It reports bytes per room and per member.
func BenchmarkMemory(b *testing.B) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s, err := rooms.New(rooms.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := s.Open(member(fmt.Sprint("c", i)), fmt.Sprintf("password number %d", i)); err != nil {
			b.Fatal(err)
		}
		for j := range 4 {
			if _, _, err := s.Join(fmt.Sprintf("password number %d", i), member(fmt.Sprint("m", i, "-", j)), ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	b.ReportMetric(heap/float64(b.N), "B/room")
	b.ReportMetric(heap/float64(b.N*5), "B/member")
	if n, _ := s.Counts(); n != b.N {
		b.Fatalf("%d rooms", n)
	}
}
