package rooms_test

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/kumo-chat/kumo/rooms"
)

// TestRefsFollowTheRoom walks a record through a room's life: the purchase's ids move into the room,
// members' records are taken once by their wipe, a member who left is no longer recorded until they
// rejoin, and the record outlives the room's close only until every wipe took it.
func TestRefsFollowTheRoom(t *testing.T) {
	s := newStore(t, rooms.Config{MaxRefs: 6}, nil)
	a, b := member("a"), member("b")
	pend := rooms.Pending(a.Key())
	if n := s.Keep(pend, "newroom", "invoice"); n != 0 {
		t.Fatalf("pending purchase dropped %d", n)
	}
	r, _, err := s.Open(a, "twelve chars!")
	if err != nil {
		t.Fatal(err)
	}
	ta, tb := rooms.Trace{Room: r.ID, Member: a.Key()}, rooms.Trace{Room: r.ID, Member: b.Key()}
	if s.Tracing(tb) {
		t.Fatal("a stranger is traced")
	}
	if n := s.Keep(tb, "x"); n != 1 {
		t.Fatalf("kept %d refs for a stranger", 1-n)
	}
	if _, _, err := s.Join("twelve chars!", b, ""); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		do      func() int
		dropped int
	}{
		{"creator's open message", func() int { return s.Keep(ta, "open") }, 0},
		{"late invoice goes to the creator's room", func() int { return s.Keep(pend, "late") }, 0},
		{"member's relay", func() int { return s.Keep(tb, "b1") }, 0},
		{"cap: one of two kept", func() int { return s.Keep(tb, "b2", "b3") }, 1},
	}
	for _, st := range steps {
		if got := st.do(); got != st.dropped {
			t.Fatalf("%s: dropped %d, want %d", st.name, got, st.dropped)
		}
	}
	if got, want := s.TakeRefs(ta), []string{"newroom", "invoice", "open", "late"}; !slices.Equal(got, want) {
		t.Fatalf("creator's record %q, want %q", got, want)
	}
	if _, _, err := s.Leave(b.Key()); err != nil {
		t.Fatal(err)
	}
	if !s.Tracing(tb) {
		t.Fatal("a member who left is not traced until their wipe")
	}
	if got := s.TakeRefs(tb); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Fatalf("leaver's record %q", got)
	}
	if s.Tracing(tb) || s.Keep(tb, "after") != 1 {
		t.Fatal("a member whose wipe ran is still recorded")
	}
	if _, _, err := s.Join("twelve chars!", b, ""); err != nil {
		t.Fatal(err)
	}
	if s.Keep(tb, "again") != 0 {
		t.Fatal("a member who rejoined is not recorded")
	}
	if _, err := s.Destroy(a.Key()); err != nil {
		t.Fatal(err)
	}
	if refs, chats := s.RefsLeft(); refs != 1 || chats != 1 {
		t.Fatalf("left after close: %d refs in %d chats, want 1 in 1", refs, chats)
	}
	if s.Keep(tb, "in flight") != 0 {
		t.Fatal("a message still on its way when the room closed is not recorded")
	}
	if got := s.TakeRefs(tb); !slices.Equal(got, []string{"again", "in flight"}) {
		t.Fatalf("record after close %q", got)
	}
	s.TakeRefs(ta)
	if refs, chats := s.RefsLeft(); refs != 0 || chats != 0 {
		t.Fatalf("left after every wipe: %d refs in %d chats", refs, chats)
	}
	if s.Tracing(ta) || s.Tracing(tb) {
		t.Fatal("a wiped room is still traced")
	}
}

func TestPendingRefsAreTaken(t *testing.T) {
	s := newStore(t, rooms.Config{}, nil)
	p := rooms.Pending(member("a").Key())
	s.Keep(p, "1", "2")
	if got := s.TakeRefs(p); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("pending record %q", got)
	}
	if got := s.TakeRefs(p); got != nil {
		t.Fatalf("taken twice: %q", got)
	}
}

// BenchmarkRefs measures what recording one message id costs in memory (Telegram-sized ids and
// Matrix event ids), the figure rooms.max_refs is sized from.
// Run: go test -tags goolm -run '^$' -bench Refs -benchmem ./rooms/
func BenchmarkRefs(b *testing.B) {
	for _, tc := range []struct {
		name string
		id   func(i int) string
	}{
		{"telegram", func(i int) string { return fmt.Sprint(100000 + i) }},
		{"matrix", func(i int) string { return fmt.Sprintf("$%043d", i) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const members, perMember = 50, 2000
			var perRef float64
			for range b.N {
				s, err := rooms.New(rooms.Config{MaxMembers: members}, nil)
				if err != nil {
					b.Fatal(err)
				}
				r, _, _ := s.Open(member("c"), "twelve chars!")
				traces := []rooms.Trace{{Room: r.ID, Member: member("c").Key()}}
				for i := 1; i < members; i++ {
					m := member(fmt.Sprint(i))
					if _, _, err := s.Join("twelve chars!", m, ""); err != nil {
						b.Fatal(err)
					}
					traces = append(traces, rooms.Trace{Room: r.ID, Member: m.Key()})
				}
				ids := make([]string, perMember)
				for i := range ids {
					ids[i] = tc.id(i)
				}
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for _, tr := range traces {
					for _, id := range ids {
						s.Keep(tr, id)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perRef = float64(after.HeapAlloc-before.HeapAlloc) / float64(members*perMember)
				runtime.KeepAlive(ids)
				s.Close()
			}
			b.ReportMetric(perRef, "bytes/ref")
		})
	}
}
