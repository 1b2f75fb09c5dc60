package rooms_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/rooms"
)

// TestConvoMapsCopies walks one message through the map: its copies are found from any member's
// chat, reactions count once per member and emoji, a re-split replaces a member's copies (and their
// wipe record), unsend forgets it, and the room's close forgets everything.
func TestConvoMapsCopies(t *testing.T) {
	s := newStore(t, rooms.Config{}, nil)
	a, b, c := member("a"), member("b"), member("c")
	r, _, err := s.Open(a, "twelve chars!")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []rooms.Member{b, c} {
		if _, _, err := s.Join("twelve chars!", m, ""); err != nil {
			t.Fatal(err)
		}
	}
	key, ok := s.Say(r.ID, a.Key(), "a1", "Quiet Fox", "hello there, this is a rather long first line of text\nsecond")
	if !ok || key != rooms.MsgKey(a.Key(), "a1") {
		t.Fatalf("Say = %q, %v", key, ok)
	}
	tb := rooms.Trace{Room: r.ID, Member: b.Key()}
	s.Keep(tb, "b7", "b8")
	s.AddCopies(r.ID, key, b.Key(), "b7", "b8")
	s.AddCopies(r.ID, key, c.Key(), "c3")

	for _, tc := range []struct {
		member, id string
		found      bool
	}{
		{a.Key(), "a1", true},
		{b.Key(), "b8", true},
		{c.Key(), "c3", true},
		{c.Key(), "b8", false}, // b's id means nothing in c's chat
		{a.Key(), "c3", false},
	} {
		got, ok := s.Find(r.ID, tc.member, tc.id)
		if ok != tc.found {
			t.Fatalf("Find(%s, %s) found=%v, want %v", tc.member, tc.id, ok, tc.found)
		}
		if ok && (got.Key != key || got.Nick != "Quiet Fox") {
			t.Fatalf("Find(%s, %s) = %+v", tc.member, tc.id, got)
		}
	}
	got, _ := s.Find(r.ID, b.Key(), "b7")
	if want := "hello there, this is a rather long first…"; got.Snippet != want {
		t.Fatalf("snippet %q, want %q", got.Snippet, want)
	}

	reacts := []struct {
		member, emoji string
		add, changed  bool
	}{
		{b.Key(), "👍", true, true},
		{b.Key(), "👍", true, false},
		{c.Key(), "👍", true, true},
		{c.Key(), "🔥", true, true},
		{b.Key(), "👍", false, true},
		{b.Key(), "👍", false, false},
	}
	for _, st := range reacts {
		if _, changed := s.React(r.ID, key, st.member, st.emoji, st.add); changed != st.changed {
			t.Fatalf("React(%s %s add=%v) changed=%v, want %v", st.member, st.emoji, st.add, changed, st.changed)
		}
	}
	got, _ = s.Find(r.ID, a.Key(), "a1")
	if sh := got.Shown(a.Key()); !slices.Equal(sh, []string{"👍", "🔥"}) {
		t.Fatalf("author sees %q", sh)
	}
	if sh := got.Shown(c.Key()); len(sh) != 0 {
		t.Fatalf("c sees their own reactions from kumo: %q", sh)
	}

	s.SetCopies(r.ID, key, b.Key(), []string{"b7"})
	if _, ok := s.Find(r.ID, b.Key(), "b8"); ok {
		t.Fatal("a copy deleted by a re-split is still mapped")
	}
	if refs := s.TakeRefs(tb); !slices.Equal(refs, []string{"b7"}) {
		t.Fatalf("b's wipe record after the re-split: %q", refs)
	}
	if _, ok := s.Unsay(r.ID, key, 3); !ok {
		t.Fatal("Unsay found nothing")
	}
	if _, ok := s.Find(r.ID, c.Key(), "c3"); ok {
		t.Fatal("an unsent message is still found")
	}
	s.AddCopies(r.ID, key, c.Key(), "c4") // a copy still on its way when it was taken back
	if ids, _ := s.TakeCopies(r.ID, key, c.Key()); !slices.Equal(ids, []string{"c3", "c4"}) {
		t.Fatalf("c's copies to delete: %q", ids)
	}
	s.TakeCopies(r.ID, key, a.Key())
	s.TakeCopies(r.ID, key, b.Key())
	if _, ok := s.Unsay(r.ID, key, 3); ok {
		t.Fatal("a message whose copies were all taken is still mapped")
	}

	key2, _ := s.Say(r.ID, b.Key(), "b9", "Calm Owl", "later")
	s.AddCopies(r.ID, key2, a.Key(), "a2")
	if _, err := s.Destroy(a.Key()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Find(r.ID, a.Key(), "a2"); ok {
		t.Fatal("a closed room's messages are still mapped")
	}
	if _, ok := s.Say(r.ID, a.Key(), "a3", "Quiet Fox", "after"); ok {
		t.Fatal("a closed room maps new messages")
	}
}

// An unsend reaches each member in their delivery order: a copy recorded after the other members'
// copies were already taken (its send was still on its way) is still handed to its member's
// TakeCopies, whichever member comes last; once every member's ran, the message is forgotten.
func TestConvoUnsendWaitsForEveryMember(t *testing.T) {
	for _, late := range []string{"a", "b", "c"} {
		t.Run("late "+late, func(t *testing.T) {
			s := newStore(t, rooms.Config{}, nil)
			ms := map[string]rooms.Member{"a": member("a"), "b": member("b"), "c": member("c")}
			r, _, err := s.Open(ms["a"], "twelve chars!")
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"b", "c"} {
				if _, _, err := s.Join("twelve chars!", ms[n], ""); err != nil {
					t.Fatal(err)
				}
			}
			key, _ := s.Say(r.ID, ms["a"].Key(), "a1", "Quiet Fox", "hello")
			for _, n := range []string{"b", "c"} {
				if n != late {
					s.AddCopies(r.ID, key, ms[n].Key(), n+"1")
				}
			}
			if _, ok := s.Unsay(r.ID, key, 3); !ok {
				t.Fatal("Unsay found nothing")
			}
			for _, n := range []string{"a", "b", "c"} {
				if n != late {
					s.TakeCopies(r.ID, key, ms[n].Key())
				}
			}
			tl := rooms.Trace{Room: r.ID, Member: ms[late].Key()}
			s.Keep(tl, late+"9")
			s.AddCopies(r.ID, key, ms[late].Key(), late+"9") // its send returns only now
			want := []string{late + "9"}
			if late == "a" {
				want = []string{"a1", "a9"} // the author's own message goes with it
			}
			if ids, _ := s.TakeCopies(r.ID, key, ms[late].Key()); !slices.Equal(ids, want) {
				t.Fatalf("the late member's copies to delete: %q, want %q", ids, want)
			}
			if refs := s.TakeRefs(tl); len(refs) != 0 {
				t.Fatalf("a deleted copy is still in the wipe record: %q", refs)
			}
			// Every member's TakeCopies ran: the message is forgotten, so nothing more attaches to it.
			s.AddCopies(r.ID, key, ms[late].Key(), late+"10")
			if ids, _ := s.TakeCopies(r.ID, key, ms[late].Key()); ids != nil {
				t.Fatalf("a forgotten message still collects copies: %q", ids)
			}
		})
	}
}

func TestConvoCap(t *testing.T) {
	s := newStore(t, rooms.Config{MaxMapped: 3}, nil)
	a := member("a")
	r, _, _ := s.Open(a, "twelve chars!")
	for i := range 5 {
		s.Say(r.ID, a.Key(), fmt.Sprint(i), "Quiet Fox", "text")
	}
	for i := range 5 {
		_, ok := s.Find(r.ID, a.Key(), fmt.Sprint(i))
		if want := i >= 2; ok != want {
			t.Fatalf("message %d mapped=%v, want %v (cap 3 keeps the newest)", i, ok, want)
		}
	}
}

func TestSnippet(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{"  padded  ", "padded"},
		{"first\nsecond", "first…"},
		{strings.Repeat("é", 45), strings.Repeat("é", 40) + "…"},
		{strings.Repeat("x", 40), strings.Repeat("x", 40)},
	} {
		if got := rooms.Snippet(tc.in); got != tc.want {
			t.Errorf("Snippet(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// BenchmarkConvo measures what mapping one relayed message costs in memory: a message with its
// snippet, the author's id and one copy for each of 3 recipients (Telegram-sized ids), on top of
// the wipe's record of the same ids.
// Run: go test -tags goolm -run '^$' -bench Convo -benchmem ./rooms/
func BenchmarkConvo(b *testing.B) {
	const recipients, msgs = 3, 5000
	var perMsg float64
	for range b.N {
		s, err := rooms.New(rooms.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		a := member("a")
		r, _, _ := s.Open(a, "twelve chars!")
		var ms []rooms.Member
		for i := range recipients {
			m := member(fmt.Sprint(i))
			if _, _, err := s.Join("twelve chars!", m, ""); err != nil {
				b.Fatal(err)
			}
			ms = append(ms, m)
		}
		texts := make([]string, msgs)
		for i := range texts {
			texts[i] = fmt.Sprintf("message %d with a first line longer than the snippet keeps", i)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range msgs {
			key, _ := s.Say(r.ID, a.Key(), fmt.Sprint(100000+i), "Quiet Fox", texts[i])
			for _, m := range ms {
				id := fmt.Sprint(200000 + i)
				s.Keep(rooms.Trace{Room: r.ID, Member: m.Key()}, id)
				s.AddCopies(r.ID, key, m.Key(), id)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perMsg = float64(after.HeapAlloc-before.HeapAlloc) / msgs
		runtime.KeepAlive(texts)
		s.Close()
	}
	b.ReportMetric(perMsg, "bytes/msg")
}

// A combined send (several relayed messages in one platform message) is every carried message's
// copy: it is marked, so that none of them edits or deletes it for the others.
func TestConvoCombinedCopy(t *testing.T) {
	s := newStore(t, rooms.Config{}, nil)
	a, b := member("a"), member("b")
	r, _, _ := s.Open(a, "twelve chars!")
	if _, _, err := s.Join("twelve chars!", b, ""); err != nil {
		t.Fatal(err)
	}
	k1, _ := s.Say(r.ID, a.Key(), "a1", "Quiet Fox", "one")
	k2, _ := s.Say(r.ID, a.Key(), "a2", "Quiet Fox", "two")
	s.AddCopies(r.ID, k1, b.Key(), "b9")
	s.AddCopies(r.ID, k2, b.Key(), "b9")
	for _, k := range []string{k1, k2} {
		got, ok := s.Get(r.ID, k)
		if !ok || !got.Combined[b.Key()] || got.Combined[a.Key()] {
			t.Fatalf("%s: combined %v", k, got.Combined)
		}
	}
	s.Unsay(r.ID, k1, 2)
	if ids, combined := s.TakeCopies(r.ID, k1, b.Key()); !combined || !slices.Equal(ids, []string{"b9"}) {
		t.Fatalf("TakeCopies of a combined copy = %q, %v", ids, combined)
	}
	if got, ok := s.Find(r.ID, b.Key(), "b9"); !ok || got.Key != k2 {
		t.Fatalf("the combined copy no longer finds the other message: %+v %v", got, ok)
	}
}

// BenchmarkConvoCombinedLine measures what the map keeps beyond BenchmarkConvo for each line of a
// combined send (its record for re-rendering the send): 5,000 messages to 3 recipients, carried
// five to a send.
func BenchmarkConvoCombinedLine(b *testing.B) {
	const recipients, msgs, per = 3, 5000, 5
	var perLine float64
	for range b.N {
		s, err := rooms.New(rooms.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		a := member("a")
		r, _, _ := s.Open(a, "twelve chars!")
		var ms []rooms.Member
		for i := range recipients {
			m := member(fmt.Sprint(i))
			if _, _, err := s.Join("twelve chars!", m, ""); err != nil {
				b.Fatal(err)
			}
			ms = append(ms, m)
		}
		texts := make([]string, msgs)
		keys := make([]string, msgs)
		for i := range texts {
			texts[i] = fmt.Sprintf("message %d, a line of an everyday length", i)
			keys[i], _ = s.Say(r.ID, a.Key(), fmt.Sprint(100000+i), "Quiet Fox", texts[i])
		}
		ids := make([]string, msgs/per)
		for i := range ids {
			ids[i] = fmt.Sprint(200000 + i)
			for _, m := range ms {
				s.Keep(rooms.Trace{Room: r.ID, Member: m.Key()}, ids[i])
				s.AddCopies(r.ID, keys[i*per], m.Key(), ids[i])
			}
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i, id := range ids {
			lines := make([]rooms.Line, per)
			for j := range lines {
				lines[j] = rooms.Line{Key: keys[i*per+j], Nick: "Quiet Fox", Text: texts[i*per+j]}
			}
			for _, m := range ms {
				s.Combine(r.ID, m.Key(), id, lines)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perLine = float64(after.HeapAlloc-before.HeapAlloc) / (msgs * recipients)
		runtime.KeepAlive(texts)
		runtime.KeepAlive(keys)
		s.Close()
	}
	b.ReportMetric(perLine, "bytes/line")
}

// A combined send's lines are kept per recipient: an edit changes one line, an unsend removes it,
// the last one gone leaves nothing to show; a message forgotten past rooms.max_mapped takes the
// record with it (the send can no longer be re-rendered whole).
func TestConvoRecombine(t *testing.T) {
	s := newStore(t, rooms.Config{MaxMapped: 3}, nil)
	a, b := member("a"), member("b")
	r, _, _ := s.Open(a, "twelve chars!")
	if _, _, err := s.Join("twelve chars!", b, ""); err != nil {
		t.Fatal(err)
	}
	k1, _ := s.Say(r.ID, a.Key(), "a1", "Quiet Fox", "one")
	k2, _ := s.Say(r.ID, a.Key(), "a2", "Quiet Fox", "two")
	for _, k := range []string{k1, k2} {
		s.AddCopies(r.ID, k, b.Key(), "b9")
	}
	s.Combine(r.ID, b.Key(), "b9", []rooms.Line{{Key: k1, Nick: "Quiet Fox", Text: "one"}, {Key: k2, Nick: "Quiet Fox", Text: "two"}})
	texts := func(ls []rooms.Line) string {
		var out []string
		for _, l := range ls {
			out = append(out, l.Text)
		}
		return strings.Join(out, " ")
	}
	steps := []struct {
		name, member, id, key, text string
		remove                      bool
		want                        string
		ok                          bool
	}{
		{"another member's chat", a.Key(), "b9", k1, "x", false, "", false},
		{"not a combined send", b.Key(), "b1", k1, "x", false, "", false},
		{"edit the first", b.Key(), "b9", k1, "ONE", false, "ONE two", true},
		{"unsend the first", b.Key(), "b9", k1, "", true, "two", true},
		{"a line no longer there", b.Key(), "b9", k1, "x", false, "", false},
		{"unsend the last", b.Key(), "b9", k2, "", true, "", true},
		{"nothing left", b.Key(), "b9", k2, "x", false, "", false},
	}
	for _, st := range steps {
		got, ok := s.Recombine(r.ID, st.member, st.id, st.key, st.text, st.remove)
		if ok != st.ok || texts(got) != st.want {
			t.Fatalf("%s: %q %v, want %q %v", st.name, texts(got), ok, st.want, st.ok)
		}
	}
	// Past the cap the oldest message goes, and with it the record of the send that carried it.
	k3, _ := s.Say(r.ID, a.Key(), "a3", "Quiet Fox", "three")
	k4, _ := s.Say(r.ID, a.Key(), "a4", "Quiet Fox", "four")
	for _, k := range []string{k3, k4} {
		s.AddCopies(r.ID, k, b.Key(), "b10")
	}
	s.Combine(r.ID, b.Key(), "b10", []rooms.Line{{Key: k3, Nick: "Quiet Fox", Text: "three"}, {Key: k4, Nick: "Quiet Fox", Text: "four"}})
	if _, ok := s.Recombine(r.ID, b.Key(), "b10", k4, "FOUR", false); !ok {
		t.Fatal("a combined send within the cap cannot be re-rendered")
	}
	s.Say(r.ID, a.Key(), "a5", "Quiet Fox", "five")
	s.Say(r.ID, a.Key(), "a6", "Quiet Fox", "six") // k3 is forgotten
	if got, ok := s.Recombine(r.ID, b.Key(), "b10", k4, "four!", false); ok {
		t.Fatalf("a send carrying a forgotten message was re-rendered as %q", texts(got))
	}
}
