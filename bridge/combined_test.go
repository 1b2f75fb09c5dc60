package bridge_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// combinedOf is the latest combined send in the chat (ok false: none is shown).
func combinedOf(ss []bridgetest.Shown) (bridgetest.Shown, bool) {
	for _, s := range slices.Backward(ss) {
		if !s.Own && s.Msg.Kind == bridge.KindRelay && len(s.Msg.Lines) > 0 {
			return s, true
		}
	}
	return bridgetest.Shown{}, false
}

func lineTexts(m bridge.Message) string {
	var t []string
	for _, l := range m.Lines {
		t = append(t, l.Text)
	}
	return strings.Join(t, " ")
}

// An edit or unsend of one message carried in a combined send re-renders that send in place where
// the recipient's platform edits (cv), and falls back to a marked reply or a notice where it
// cannot (pl); after the room ended nothing changes.
func TestEditAndUnsendInACombinedSend(t *testing.T) {
	type act struct {
		action bridge.Action
		line   string // which of c's messages
		text   string
	}
	cases := []struct {
		name   string
		onPL   bool // the combined send is in b's chat (pl: no edits, no deletions)
		end    bool // the room ends before the acts
		acts   []act
		want   string // the combined send's lines after (cv); "" for deleted
		edits  int
		notice string // pl: what the fallback shows
	}{
		{name: "edit first", acts: []act{{bridge.ActionEdit, "l1", "L1x"}}, want: "L1x l2 l3", edits: 1},
		{name: "edit middle", acts: []act{{bridge.ActionEdit, "l2", "L2x"}}, want: "l1 L2x l3", edits: 1},
		{name: "edit last", acts: []act{{bridge.ActionEdit, "l3", "L3x"}}, want: "l1 l2 L3x", edits: 1},
		{name: "unsend one", acts: []act{{bridge.ActionUnsend, "l2", ""}}, want: "l1 l3", edits: 1},
		{name: "unsend every line", acts: []act{{bridge.ActionUnsend, "l1", ""}, {bridge.ActionUnsend, "l3", ""}, {bridge.ActionUnsend, "l2", ""}}, want: ""},
		{name: "no editor: edit", onPL: true, acts: []act{{bridge.ActionEdit, "l2", "L2x"}}, notice: "✏️"},
		{name: "no editor: unsend", onPL: true, acts: []act{{bridge.ActionUnsend, "l2", ""}}, notice: "taken back by its author"},
		{name: "after the end", end: true, acts: []act{{bridge.ActionEdit, "l2", "L2x"}, {bridge.ActionUnsend, "l1", ""}}, want: "l1 l2 l3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startConvo(t, func(c *bridge.Config) { c.Wipe = false })
			nc := h.nick(t, h.c)
			p, to := h.cv.Platform, h.a
			if tc.onPL {
				p, to = h.pl, h.bb
			}
			// c's arrival is told before the backlog is built, so that it is not what is held.
			p.WaitChat(t, to.Chat, wait, "c's arrival", func(ss []bridgetest.Shown) bool {
				return slices.ContainsFunc(ss, func(s bridgetest.Shown) bool {
					return s.Msg.Kind == bridge.KindNotice && strings.Contains(s.Msg.Text, nc) && strings.Contains(s.Msg.Text, "joined")
				})
			})
			queuedUntil2(t, h, 0)
			release := p.Hold()
			t.Cleanup(release)
			h.sp.Say(t, h.c, "l0")
			p.WaitHeld(t, 1) // l0 is being sent: what follows waits behind it
			for _, l := range []string{"l1", "l2", "l3"} {
				h.sp.Say(t, h.c, l)
			}
			// Once the other recipient (not held) shows l3, alone or combined, and three messages wait, c's lane has
			// handed all three to the held one. (Not an exact count of every queue: under load
			// another recipient's delivery may still be in a queue at that moment.)
			op, other := h.pl, h.bb
			if tc.onPL {
				op, other = h.cv.Platform, h.a
			}
			op.WaitChat(t, other.Chat, wait, "l3 in the other chat", func(ss []bridgetest.Shown) bool {
				return slices.ContainsFunc(ss, func(s bridgetest.Shown) bool {
					return !s.Own && s.Msg.Kind == bridge.KindRelay && (s.Msg.Text == "l3" || strings.HasSuffix(lineTexts(s.Msg), "l3"))
				})
			})
			for deadline := time.Now().Add(wait); h.b.Stats().QueuedMessages < 3; {
				if time.Now().After(deadline) {
					t.Fatalf("%d messages queued, want at least 3", h.b.Stats().QueuedMessages)
				}
				time.Sleep(time.Millisecond)
			}
			release()
			var sent bridgetest.Shown
			p.WaitChat(t, to.Chat, wait, "the combined send", func(ss []bridgetest.Shown) bool {
				var ok bool
				sent, ok = combinedOf(ss)
				return ok && lineTexts(sent.Msg) == "l1 l2 l3"
			})
			h.mapped(t, to, sent.ID)
			if tc.end {
				h.cv.Say(t, h.a, "/destroy")
				h.sp.WaitText(t, h.c.Chat, "destroyed")
			}
			for _, a := range tc.acts {
				h.sp.Act(t, h.c, a.action, ownID(t, h.sp.Platform, h.c.Chat, a.line), a.text)
			}
			// c's lane handles the acts in order, and each recipient's lane runs them behind
			// what came before: once c hears back on /info and to's chat has the answer to a
			// later message of its own, everything was done.
			if tc.end {
				h.sp.Say(t, h.c, "/info")
				h.sp.WaitText(t, h.c.Chat, "not in a room")
				p.Say(t, to, "/info")
				p.WaitText(t, to.Chat, "not in a room")
			} else {
				h.sp.Say(t, h.c, "after")
				copyOf(t, p, to.Chat, nc, "after")
			}
			ss := p.Chat(to.Chat)
			got, shown := combinedOf(ss)
			if tc.onPL {
				if got.Edits != 0 || lineTexts(got.Msg) != "l1 l2 l3" {
					t.Fatalf("pl's combined send changed: %+v", got)
				}
				i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool {
					return !s.Own && s.Msg.ReplyTo == sent.ID && (strings.Contains(s.Msg.Quote, tc.notice) || strings.Contains(s.Msg.Text, tc.notice))
				})
				if i < 0 {
					t.Fatalf("no fallback %q replying to the combined send:\n%s", tc.notice, dumpShown(ss))
				}
				return
			}
			if tc.want == "" {
				if shown {
					t.Fatalf("the combined send outlived every line it carried: %+v", got)
				}
				return
			}
			if !shown || got.ID != sent.ID || lineTexts(got.Msg) != tc.want || got.Edits != tc.edits {
				t.Fatalf("combined send %+v (lines %q), want lines %q edited %d times in place", got, lineTexts(got.Msg), tc.want, tc.edits)
			}
			for _, l := range got.Msg.Lines {
				if l.From != nc {
					t.Fatalf("a re-rendered line stands behind %q, want %q", l.From, nc)
				}
			}
			if slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return !s.Own && strings.Contains(s.Msg.Quote, "✏️") }) ||
				slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return strings.Contains(s.Msg.Text, "taken back") }) {
				t.Fatalf("a fallback was sent where the send was re-rendered:\n%s", dumpShown(ss))
			}
		})
	}
}

// queuedUntil2 is queuedUntil for the conversation harness.
func queuedUntil2(t *testing.T, h *convoHarness, n int) {
	t.Helper()
	queuedUntil(t, &harness{b: h.b}, n)
}

func dumpShown(ss []bridgetest.Shown) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.String() + "\n")
	}
	return b.String()
}
