package telegram_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// ownMessage is the message_id of the user's own message with that text in their chat.
func (w *world) ownMessage(t testing.TB, u telegramtest.User, text string) int {
	t.Helper()
	for _, m := range w.s.Shows(u.ID) {
		if m.Incoming && m.Text == text {
			return m.MessageID
		}
	}
	t.Fatalf("%s's chat shows no own %q", u.FirstName, text)
	return 0
}

// waitMapped waits until the core knows id in who's chat as a message of their room.
func (w *world) waitMapped(t testing.TB, who bridge.Addr, id string) {
	t.Helper()
	room, _, err := w.b.Store().RoomOf(who.Key())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := w.b.Store().Find(room.ID, who.Key(), id); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the core never mapped %s in %s's chat", id, who.User)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitShows waits until u's chat satisfies cond.
func (w *world) waitShows(t testing.TB, u telegramtest.User, what string, cond func([]telegramtest.Shown) bool) []telegramtest.Shown {
	t.Helper()
	got, err := w.s.WaitShows(w.ctx, u.ID, cond)
	if err != nil {
		var q []string
		for _, m := range got {
			q = append(q, strconv.Itoa(m.MessageID)+":"+strconv.Quote(m.Text))
		}
		t.Fatalf("%s's chat: waiting for %s: %v; shows %s", u.FirstName, what, err, strings.Join(q, ", "))
	}
	return got
}

func shownWith(ms []telegramtest.Shown, sub string) (telegramtest.Shown, bool) {
	for _, m := range slices.Backward(ms) {
		if !m.Incoming && strings.Contains(m.Text, sub) {
			return m, true
		}
	}
	return telegramtest.Shown{}, false
}

// TestConversationAcrossPlatforms has Telegram members reply, edit (past a split), react and
// /unsend, with a member on a platform that can do everything ("cv") and one that can do none of
// it ("pl"), and the other way round: each reaches each as the native action on their own copy,
// with the fallbacks where a platform lacks it.
func TestConversationAcrossPlatforms(t *testing.T) {
	cv := bridgetest.NewConversing("cv", bridge.Limits{MaxText: 30000}, 1, 3, nil)
	pl := bridgetest.New("pl", bridge.Limits{MaxText: 4096})
	w := startWorldWith(t, unlimited(), nil, cv, pl)
	pw := w.openRoom(t, alice, bob)
	carol, dave := cv.User("carol"), pl.User("dave")
	cv.Say(t, carol, "/join "+pw)
	cv.WaitText(t, carol.Chat, "You joined")
	pl.Say(t, dave, "/join "+pw)
	pl.WaitText(t, dave.Chat, "You joined")
	na, nb := w.nick(t, alice), w.nick(t, bob)

	w.say(alice, "hello from telegram")
	orig := w.ownMessage(t, alice, "hello from telegram")
	bobCopy, _ := shownWith(w.waitShows(t, bob, "alice's message", func(ms []telegramtest.Shown) bool {
		_, ok := shownWith(ms, "hello from telegram")
		return ok
	}), "hello from telegram")
	carolCopy := cv.WaitChat(t, carol.Chat, 10*time.Second, "alice's message", func(ss []bridgetest.Shown) bool {
		return slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return s.Msg.Text == "hello from telegram" })
	})
	cid := carolCopy[slices.IndexFunc(carolCopy, func(s bridgetest.Shown) bool { return s.Msg.Text == "hello from telegram" })].ID
	// A chat shows a copy a moment before the core learns its id: a person cannot reply faster than
	// that, a test can.
	w.waitMapped(t, addr(bob), strconv.Itoa(bobCopy.MessageID))
	w.waitMapped(t, carol, string(cid))

	t.Run("reply from telegram", func(t *testing.T) {
		w.s.Inject(telegramtest.Incoming{From: bob, Text: "welcome!", ReplyTo: bobCopy.MessageID})
		ms := w.waitShows(t, alice, "bob's reply", func(ms []telegramtest.Shown) bool { _, ok := shownWith(ms, "welcome!"); return ok })
		if m, _ := shownWith(ms, "welcome!"); m.ReplyTo != orig {
			t.Fatalf("alice got bob's reply %+v as a reply to %d, want her own message %d; sent %+v", m, m.ReplyTo, orig, w.s.Sent(alice.ID))
		}
		got := cv.WaitChat(t, carol.Chat, 10*time.Second, "bob's reply", func(ss []bridgetest.Shown) bool {
			return slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return s.Msg.Text == "welcome!" })
		})
		if m := got[len(got)-1]; m.Msg.ReplyTo != cid || !strings.HasPrefix(m.Msg.Quote, "↩ "+na+": hello from telegram") {
			t.Fatalf("carol got %+v, want a reply to her copy %s", m.Msg, cid)
		}
	})

	t.Run("reply to telegram", func(t *testing.T) {
		cv.Reply(t, carol, cid, "hi alice")
		ms := w.waitShows(t, bob, "carol's reply", func(ms []telegramtest.Shown) bool { _, ok := shownWith(ms, "hi alice"); return ok })
		if m, _ := shownWith(ms, "hi alice"); m.ReplyTo != bobCopy.MessageID || strings.Contains(m.Text, "↩") {
			t.Fatalf("bob got %+v, want a native reply to his copy %d without the quote", m, bobCopy.MessageID)
		}
	})

	t.Run("edit that changes the split", func(t *testing.T) {
		long := strings.Repeat("word ", 1000) // 5,000 characters: two Telegram messages
		w.s.InjectEdit(alice, orig, long)
		w.waitShows(t, bob, "the edit in two pieces", func(ms []telegramtest.Shown) bool {
			i := slices.IndexFunc(ms, func(m telegramtest.Shown) bool { return m.MessageID == bobCopy.MessageID })
			_, second := shownWith(ms, "(2/2)")
			return i >= 0 && ms[i].Edits == 1 && strings.Contains(ms[i].Text, "(1/2)") && second
		})
		cv.WaitChat(t, carol.Chat, 10*time.Second, "the edit", func(ss []bridgetest.Shown) bool {
			i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.ID == cid })
			return i >= 0 && ss[i].Msg.Text == long && ss[i].Edits == 1
		})
		w.s.InjectEdit(alice, orig, "hello again")
		w.waitShows(t, bob, "the edit in one piece", func(ms []telegramtest.Shown) bool {
			_, second := shownWith(ms, "(2/2)")
			i := slices.IndexFunc(ms, func(m telegramtest.Shown) bool { return m.MessageID == bobCopy.MessageID })
			return i >= 0 && ms[i].Text == na+": hello again" && !second
		})
		// pl cannot edit: the new text replies to its copy, marked as an edit.
		pl.WaitFor(t, dave.Chat, 10*time.Second, "the edit as a marked reply", func(ms []bridge.Message) bool {
			return slices.ContainsFunc(ms, func(m bridge.Message) bool {
				return m.Text == "hello again" && strings.HasPrefix(m.Quote, "✏️ "+na+" edited: ") && m.ReplyTo != ""
			})
		})
	})

	t.Run("reactions", func(t *testing.T) {
		w.s.InjectReaction(bob, bobCopy.MessageID, nil, []string{"👍"})
		w.waitShows(t, alice, "👍 on her message", func(ms []telegramtest.Shown) bool {
			i := slices.IndexFunc(ms, func(m telegramtest.Shown) bool { return m.MessageID == orig })
			return i >= 0 && slices.Equal(ms[i].Reactions, []string{"👍"})
		})
		cv.WaitChat(t, carol.Chat, 10*time.Second, "👍 on her copy", func(ss []bridgetest.Shown) bool {
			i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.ID == cid })
			return i >= 0 && slices.Equal(ss[i].Reactions, []string{"👍"})
		})
		pl.WaitText(t, dave.Chat, nb+" reacted 👍 to: hello again")
		// Not one Telegram lets a bot use: a notice replying to alice's message.
		cv.Act(t, carol, bridge.ActionReact, cid, "🦜")
		ms := w.waitShows(t, alice, "the 🦜 notice", func(ms []telegramtest.Shown) bool { _, ok := shownWith(ms, "reacted 🦜"); return ok })
		if m, _ := shownWith(ms, "reacted 🦜"); m.ReplyTo != orig {
			t.Fatalf("the notice replies to %d, want %d", m.ReplyTo, orig)
		}
		w.s.InjectReaction(bob, bobCopy.MessageID, []string{"👍"}, nil)
		w.waitShows(t, alice, "👍 taken off", func(ms []telegramtest.Shown) bool {
			i := slices.IndexFunc(ms, func(m telegramtest.Shown) bool { return m.MessageID == orig })
			return i >= 0 && len(ms[i].Reactions) == 0
		})
	})

	t.Run("unsend", func(t *testing.T) {
		w.s.Inject(telegramtest.Incoming{From: alice, Text: "/unsend", ReplyTo: orig})
		w.waitShows(t, bob, "the copies deleted", func(ms []telegramtest.Shown) bool {
			return !slices.ContainsFunc(ms, func(m telegramtest.Shown) bool { return m.MessageID == bobCopy.MessageID })
		})
		w.waitShows(t, alice, "her message and /unsend deleted", func(ms []telegramtest.Shown) bool {
			return !slices.ContainsFunc(ms, func(m telegramtest.Shown) bool {
				return m.Incoming && (m.MessageID == orig || m.Text == "/unsend")
			})
		})
		cv.WaitChat(t, carol.Chat, 10*time.Second, "her copy deleted", func(ss []bridgetest.Shown) bool {
			return !slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return s.ID == cid })
		})
	})
}

// TestEditAndReactFollowTheBotAPIRules checks the adapter against the fake's Bot API rules: an
// unchanged edit is no error, a vanished message is ErrRejected, a reaction outside Telegram's list
// or more than one is refused, and the adapter's list is Telegram's.
func TestEditAndReactFollowTheBotAPIRules(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{}))
	a := newAdapter(t, s, noPacing())
	ctx := deadline(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "hi"}) // the user started the bot
	to := addr(alice)
	m := bridge.Message{Kind: bridge.KindRelay, From: "calm-otter", Text: "first <b>"}
	id, err := a.SendText(ctx, to, m)
	if err != nil {
		t.Fatal(err)
	}
	edited := m
	edited.Text = "second & <i>"
	tests := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"edit", func() error { return a.EditText(ctx, to, id, edited) }, nil},
		{"the same edit again (not modified)", func() error { return a.EditText(ctx, to, id, edited) }, nil},
		{"edit a message that is gone", func() error { return a.EditText(ctx, to, "999", edited) }, bridge.ErrRejected},
		{"edit the user's own message", func() error { return a.EditText(ctx, to, "1", edited) }, bridge.ErrRejected},
		{"react", func() error { return a.SetReactions(ctx, to, id, []string{"❤️"}) }, nil},
		{"react on the user's message", func() error { return a.SetReactions(ctx, to, "1", []string{"👍"}) }, nil},
		{"an emoji Telegram refuses", func() error { return a.SetReactions(ctx, to, id, []string{"🦜"}) }, bridge.ErrRejected},
		{"two reactions", func() error { return a.SetReactions(ctx, to, id, []string{"👍", "🔥"}) }, bridge.ErrRejected},
		{"none removes", func() error { return a.SetReactions(ctx, to, "1", nil) }, nil},
	}
	for _, tc := range tests {
		if err := tc.call(); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	shows := s.Shows(alice.ID)
	if got := shows[len(shows)-1]; got.Text != "calm-otter: second & <i>" || got.Edits != 1 || !slices.Equal(got.Reactions, []string{"❤"}) {
		t.Fatalf("the bot's message shows %+v", got)
	}
	if got := shows[0]; len(got.Reactions) != 0 {
		t.Fatalf("the user's message keeps the bot's reaction %v", got.Reactions)
	}
	for _, e := range telegramtest.ReactionEmoji {
		if !a.CanReact(e) {
			t.Errorf("the adapter refuses Telegram's reaction %q", e)
		}
	}
	if a.CanReact("🦜") || a.MaxReactions() != 1 {
		t.Error("the adapter allows what Telegram does not")
	}
}

// A combined send re-rendered after an edit or unsend of one of its lines (bridge.Message.Lines
// given to EditText) reads exactly as that combined send would if sent anew: every line behind its
// own pseudonym, escaped.
func TestCombinedSendIsReRenderedLikeACombinedSend(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{}))
	a := newAdapter(t, s, noPacing())
	ctx := deadline(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "hi"}) // the user started the bot
	to := addr(alice)
	sent := bridge.Message{Kind: bridge.KindRelay, Lines: []bridge.Line{
		{From: "calm-otter", Text: "one"}, {From: "red-fox", Text: "two"}, {From: "calm-otter", Text: "three"}}}
	id, err := a.SendText(ctx, to, sent)
	if err != nil {
		t.Fatal(err)
	}
	again := bridge.Message{Kind: bridge.KindRelay, Lines: []bridge.Line{
		{From: "calm-otter", Text: "one <b>&"}, {From: "calm-otter", Text: "three"}}}
	if err := a.EditText(ctx, to, id, again); err != nil {
		t.Fatalf("EditText: %v", err)
	}
	if _, err := a.SendText(ctx, to, again); err != nil {
		t.Fatal(err)
	}
	shows := s.Shows(alice.ID)
	edited, fresh := shows[len(shows)-2], shows[len(shows)-1]
	if want := "calm-otter: one <b>&\ncalm-otter: three"; fresh.Text != want {
		t.Fatalf("a fresh combined send shows %q, want %q", fresh.Text, want)
	}
	if edited.Edits != 1 || edited.Text != fresh.Text {
		t.Fatalf("the re-rendered send shows %q (%d edits), want %q edited once", edited.Text, edited.Edits, fresh.Text)
	}
}
