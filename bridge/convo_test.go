package bridge_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/rooms"
)

// convoHarness is a free-room core with three fake messengers: "cv" edits, deletes both sides and
// shows one bot reaction from a fixed list (like Telegram), "sp" does all of it with short messages
// (so texts split) and up to three reactions of any emoji, and "pl" can do none of it (every
// fallback). a is on cv, b on pl, c on sp.
type convoHarness struct {
	b        *bridge.Bridge
	cv, sp   *bridgetest.Conversing
	pl       *bridgetest.Platform
	a, bb, c bridge.Addr
}

func startConvo(t *testing.T, mutate func(*bridge.Config)) *convoHarness {
	t.Helper()
	cfg := testConfig(free, mutate)
	log := slog.New(slog.DiscardHandler)
	h := &convoHarness{
		cv: bridgetest.NewConversing("cv", bridge.Limits{MaxText: 4096}, 100, 1, []string{"👍", "🔥", "❤"}),
		sp: bridgetest.NewConversing("sp", bridge.Limits{MaxText: 40}, 1, 3, nil),
		pl: bridgetest.New("pl", bridge.Limits{MaxText: 4096}),
	}
	b, err := bridge.New(cfg, lightning.NewDev(log), log, h.cv, h.sp, h.pl)
	if err != nil {
		t.Fatal(err)
	}
	h.b = b
	t.Cleanup(bridgetest.Run(t, b))
	h.a, h.bb, h.c = h.cv.User("a"), h.pl.User("b"), h.sp.User("c")
	h.cv.Say(t, h.a, "/newroom")
	pw := h.cv.WaitText(t, h.a.Chat, "Your room is open").Code
	// The creator key follows a moment later: a test that holds a's chat must not hold it instead.
	h.cv.WaitText(t, h.a.Chat, "creator key")
	h.pl.Say(t, h.bb, pw)
	h.pl.WaitText(t, h.bb.Chat, "You joined")
	h.sp.Say(t, h.c, pw)
	h.sp.WaitText(t, h.c.Chat, "You joined")
	return h
}

func (h *convoHarness) nick(t *testing.T, a bridge.Addr) string {
	t.Helper()
	_, m, err := h.b.Store().RoomOf(a.Key())
	if err != nil {
		t.Fatal(err)
	}
	return m.Nick
}

// copyOf waits for the chat to show a relay from `from` whose text starts with prefix, and returns
// the latest.
func copyOf(t *testing.T, p *bridgetest.Platform, chat, from, prefix string) bridgetest.Shown {
	t.Helper()
	var got bridgetest.Shown
	p.WaitChat(t, chat, wait, "a relay from "+from+" starting "+prefix, func(ss []bridgetest.Shown) bool {
		for _, s := range slices.Backward(ss) {
			if !s.Own && s.Msg.Kind == bridge.KindRelay && s.Msg.From == from && strings.HasPrefix(s.Msg.Text, prefix) {
				got = s
				return true
			}
		}
		return false
	})
	return got
}

// mapped waits until the core knows id in who's chat: a chat shows a copy a moment before the core
// learns its id (a person cannot reply faster than that, a test can).
func (h *convoHarness) mapped(t *testing.T, who bridge.Addr, id bridge.MessageID) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if room, _, err := h.b.Store().RoomOf(who.Key()); err == nil {
			if _, ok := h.b.Store().Find(room.ID, who.Key(), string(id)); ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the core never mapped %s in %s's chat", id, who.User)
		}
		time.Sleep(time.Millisecond)
	}
}

func ownID(t *testing.T, p *bridgetest.Platform, chat, text string) bridge.MessageID {
	t.Helper()
	for _, s := range p.Chat(chat) {
		if s.Own && s.Text == text {
			return s.ID
		}
	}
	t.Fatalf("chat %s shows no own message %q", chat, text)
	return ""
}

// inChat says every id a chat was handed is one of that chat's: nothing names another's message.
func inChat(t *testing.T, chat string, ids ...bridge.MessageID) {
	t.Helper()
	for _, id := range ids {
		if id != "" && !strings.HasPrefix(string(id), chat+"#") {
			t.Fatalf("chat %s was handed id %s of another chat", chat, id)
		}
	}
}

func TestReplyReachesEachOwnCopy(t *testing.T) {
	h := startConvo(t, nil)
	na, nc := h.nick(t, h.a), h.nick(t, h.c)
	h.cv.Say(t, h.a, "hello everyone, how are you all doing today?")
	orig := ownID(t, h.cv.Platform, h.a.Chat, "hello everyone, how are you all doing today?")
	cCopy := copyOf(t, h.sp.Platform, h.c.Chat, na, "hello")
	bCopy := copyOf(t, h.pl, h.bb.Chat, na, "hello")
	h.mapped(t, h.c, cCopy.ID)

	h.sp.Reply(t, h.c, cCopy.ID, "fine thanks")
	quote := "↩ " + na + ": " + rooms.Snippet("hello everyone, how are you all doing today?")
	for _, tc := range []struct {
		name    string
		p       *bridgetest.Platform
		chat    string
		replyTo bridge.MessageID
	}{
		{"the author, to their own message", h.cv.Platform, h.a.Chat, orig},
		{"a member, to their copy", h.pl, h.bb.Chat, bCopy.ID},
	} {
		got := copyOf(t, tc.p, tc.chat, nc, "fine thanks")
		if got.Msg.ReplyTo != tc.replyTo || got.Msg.Quote != quote {
			t.Errorf("%s: reply to %q quoting %q, want %q quoting %q", tc.name, got.Msg.ReplyTo, got.Msg.Quote, tc.replyTo, quote)
		}
		inChat(t, tc.chat, got.Msg.ReplyTo)
	}

	// Someone who joined later has no copy: the quote stands in.
	d := h.pl.User("d")
	h.pl.Say(t, d, "/join "+h.password(t))
	h.pl.WaitText(t, d.Chat, "You joined")
	h.sp.Reply(t, h.c, cCopy.ID, "again")
	got := copyOf(t, h.pl, d.Chat, nc, "again")
	if got.Msg.ReplyTo != "" || got.Msg.Quote != quote {
		t.Fatalf("late joiner got reply to %q quoting %q, want only the quote %q", got.Msg.ReplyTo, got.Msg.Quote, quote)
	}
	if s := got.Msg.String(); !strings.HasPrefix(s, quote+"\n") {
		t.Fatalf("plain rendering does not show the quote first: %q", s)
	}
}

func (h *convoHarness) password(t *testing.T) string {
	t.Helper()
	for _, m := range h.cv.Messages(h.a.Chat) {
		if strings.Contains(m.Text, "Your room is open") {
			return m.Code
		}
	}
	t.Fatal("no password")
	return ""
}

func TestEditReachesEveryCopy(t *testing.T) {
	h := startConvo(t, nil)
	na := h.nick(t, h.a)
	// Sent and edited at once: the edit must not overtake the message it edits in any lane.
	h.cv.Say(t, h.a, "short")
	orig := ownID(t, h.cv.Platform, h.a.Chat, "short")
	steps := []struct {
		name  string
		text  string
		split bool // in sp's chat
	}{
		{"same split", "shorter", false},
		{"grows to more pieces", strings.Repeat("grow ", 20), true},
		{"shrinks back", "tiny again", false},
	}
	for i, st := range steps {
		h.cv.Act(t, h.a, bridge.ActionEdit, orig, st.text)
		ss := h.sp.WaitChat(t, h.c.Chat, wait, st.name, func(ss []bridgetest.Shown) bool {
			var text string
			n := 0
			for _, s := range ss {
				if !s.Own && s.Msg.Kind == bridge.KindRelay && s.Msg.From == na {
					text += s.Msg.Text
					n++
				}
			}
			return (n > 1) == st.split && n > 0 && text == st.text
		})
		if first := ss[slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.Msg.From == na })]; first.Edits != i+1 {
			t.Fatalf("%s: first piece edited %d times, want %d (edited in place)", st.name, first.Edits, i+1)
		}
		// No editing on pl: the new text arrives as a reply to the old copy, marked as an edit.
		var got bridgetest.Shown
		h.pl.WaitChat(t, h.bb.Chat, wait, "the edit as a new message", func(ss []bridgetest.Shown) bool {
			i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.Msg.From == na && s.Msg.Text == st.text })
			if i >= 0 {
				got = ss[i]
			}
			return i >= 0
		})
		if !strings.HasPrefix(got.Msg.Quote, "✏️ "+na+" edited: ") || got.Msg.ReplyTo == "" {
			t.Fatalf("%s: pl fallback quote %q reply to %q", st.name, got.Msg.Quote, got.Msg.ReplyTo)
		}
		inChat(t, h.bb.Chat, got.Msg.ReplyTo)
	}
}

func TestUnsendDeletesEveryCopy(t *testing.T) {
	h := startConvo(t, nil)
	na := h.nick(t, h.a)
	h.sp.Say(t, h.c, "from c, taken back")
	nc := h.nick(t, h.c)
	copyOf(t, h.cv.Platform, h.a.Chat, nc, "from c")
	bCopy := copyOf(t, h.pl, h.bb.Chat, nc, "from c")
	h.sp.Act(t, h.c, bridge.ActionUnsend, ownID(t, h.sp.Platform, h.c.Chat, "from c, taken back"), "")
	h.cv.WaitChat(t, h.a.Chat, wait, "the copy deleted", func(ss []bridgetest.Shown) bool {
		return !slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return s.Msg.From == nc })
	})
	// pl cannot delete: a notice replying to the copy says it was taken back.
	n := h.pl.WaitText(t, h.bb.Chat, "taken back by its author")
	if n.Kind != bridge.KindNotice || n.ReplyTo != bCopy.ID {
		t.Fatalf("pl notice %+v, want a notice replying to %s", n, bCopy.ID)
	}

	// On cv (no deletions reach bots, like Telegram) the author replies /unsend to their message.
	h.cv.Say(t, h.a, "oops")
	cCopy := copyOf(t, h.sp.Platform, h.c.Chat, na, "oops")
	h.cv.Reply(t, h.a, ownID(t, h.cv.Platform, h.a.Chat, "oops"), "/unsend")
	h.sp.WaitChat(t, h.c.Chat, wait, "the copy deleted", func(ss []bridgetest.Shown) bool {
		return !slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return s.ID == cCopy.ID })
	})
	h.cv.WaitChat(t, h.a.Chat, wait, "the original and /unsend deleted", func(ss []bridgetest.Shown) bool {
		return !slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return s.Own && (s.Text == "oops" || s.Text == "/unsend") })
	})

	// Someone else's message cannot be taken back.
	h.cv.Say(t, h.a, "mine")
	c2 := copyOf(t, h.sp.Platform, h.c.Chat, na, "mine")
	h.mapped(t, h.c, c2.ID)
	h.sp.Reply(t, h.c, c2.ID, "/unsend")
	h.sp.WaitText(t, h.c.Chat, "not yours")
	if !slices.ContainsFunc(h.sp.Chat(h.c.Chat), func(s bridgetest.Shown) bool { return s.ID == c2.ID }) {
		t.Fatal("a member took back someone else's message")
	}
}

func TestReactionsReachEveryCopy(t *testing.T) {
	h := startConvo(t, nil)
	nb, nc := h.nick(t, h.bb), h.nick(t, h.c)
	h.cv.Say(t, h.a, "react to this")
	orig := ownID(t, h.cv.Platform, h.a.Chat, "react to this")
	na := h.nick(t, h.a)
	cCopy := copyOf(t, h.sp.Platform, h.c.Chat, na, "react")
	bCopy := copyOf(t, h.pl, h.bb.Chat, na, "react")
	h.mapped(t, h.c, cCopy.ID)
	h.mapped(t, h.bb, bCopy.ID)

	reactionsOn := func(p *bridgetest.Platform, chat string, id bridge.MessageID, want ...string) {
		t.Helper()
		p.WaitChat(t, chat, wait, "reactions "+strings.Join(want, ","), func(ss []bridgetest.Shown) bool {
			i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.ID == id })
			return i >= 0 && slices.Equal(ss[i].Reactions, want)
		})
	}
	noticeCount := func(p *bridgetest.Platform, chat, text string) int {
		n := 0
		for _, m := range p.Messages(chat) {
			if m.Kind == bridge.KindNotice && strings.Contains(m.Text, text) {
				n++
			}
		}
		return n
	}

	h.sp.Act(t, h.c, bridge.ActionReact, cCopy.ID, "👍")
	reactionsOn(h.cv.Platform, h.a.Chat, orig, "👍")
	n := h.pl.WaitText(t, h.bb.Chat, nc+" reacted 👍 to: react to this")
	if n.Kind != bridge.KindNotice || n.ReplyTo != bCopy.ID {
		t.Fatalf("pl got %+v, want a notice replying to its copy %s", n, bCopy.ID)
	}
	h.sp.Act(t, h.c, bridge.ActionReact, cCopy.ID, "👍") // the same twice counts once

	// cv shows one bot reaction: a second emoji arrives as a notice; one it does not allow too.
	h.pl.Act(t, h.bb, bridge.ActionReact, bCopy.ID, "🔥")
	h.cv.WaitText(t, h.a.Chat, nb+" reacted 🔥 to: react to this")
	reactionsOn(h.sp.Platform, h.c.Chat, cCopy.ID, "🔥")
	h.pl.Act(t, h.bb, bridge.ActionReact, bCopy.ID, "🎉")
	h.cv.WaitText(t, h.a.Chat, nb+" reacted 🎉 to: react to this")
	reactionsOn(h.sp.Platform, h.c.Chat, cCopy.ID, "🔥", "🎉")

	// Words are no reaction.
	h.pl.Act(t, h.bb, bridge.ActionReact, bCopy.ID, "you suck")

	// Taken off: natively where it was shown, by a notice where it was one.
	h.sp.Act(t, h.c, bridge.ActionUnreact, cCopy.ID, "👍")
	reactionsOn(h.cv.Platform, h.a.Chat, orig, "🔥")
	h.pl.WaitText(t, h.bb.Chat, nc+" took back 👍 from: react to this")
	h.pl.Act(t, h.bb, bridge.ActionUnreact, bCopy.ID, "🎉")
	h.cv.WaitText(t, h.a.Chat, nb+" took back 🎉 from: react to this")
	reactionsOn(h.sp.Platform, h.c.Chat, cCopy.ID, "🔥")

	if got := noticeCount(h.pl, h.bb.Chat, "reacted 👍"); got != 1 {
		t.Fatalf("a repeated reaction was relayed %d times", got)
	}
	for _, p := range []struct {
		p    *bridgetest.Platform
		chat string
	}{{h.cv.Platform, h.a.Chat}, {h.sp.Platform, h.c.Chat}, {h.pl, h.bb.Chat}} {
		if got := noticeCount(p.p, p.chat, "you suck"); got != 0 {
			t.Fatal("words were relayed as a reaction")
		}
	}
}

func TestNothingAfterTheRoomEnds(t *testing.T) {
	h := startConvo(t, func(c *bridge.Config) { c.Wipe = false })
	na := h.nick(t, h.a)
	h.cv.Say(t, h.a, "before the end")
	orig := ownID(t, h.cv.Platform, h.a.Chat, "before the end")
	cCopy := copyOf(t, h.sp.Platform, h.c.Chat, na, "before")
	h.cv.Say(t, h.a, "/destroy")
	h.sp.WaitText(t, h.c.Chat, "destroyed")
	h.cv.Act(t, h.a, bridge.ActionEdit, orig, "after the end")
	h.cv.Act(t, h.a, bridge.ActionReact, orig, "👍")
	// The sender's messages are handled in order: once this is answered, the edit was handled.
	h.cv.Say(t, h.a, "anyone?")
	h.cv.WaitText(t, h.a.Chat, "You are not in a room")
	// And the recipient's lane has nothing queued behind what it was sent.
	h.sp.Say(t, h.c, "/info")
	h.sp.WaitText(t, h.c.Chat, "not in a room")
	for _, s := range h.sp.Chat(h.c.Chat) {
		if s.ID == cCopy.ID && (s.Edits != 0 || s.Msg.Text != "before the end") {
			t.Fatalf("a closed room's message was edited: %+v", s)
		}
		if strings.Contains(s.Msg.Text, "reacted") {
			t.Fatal("a closed room's reaction was relayed")
		}
	}
}
