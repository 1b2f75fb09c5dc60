package discord

import (
	"slices"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// TestConversationWithDiscord: a Discord member and a member on a platform that can do everything
// ("cv") reply, edit, react and delete; each reaches the other as the native action on their own
// copy (message_reference, PATCH, DELETE), a reaction shown to the Discord member as a notice.
func TestConversationWithDiscord(t *testing.T) {
	cv := bridgetest.NewConversing("cv", bridge.Limits{MaxText: 4096}, 1, 3, nil)
	c := startCoreOn(t, discordtest.Options{}, cv, cv.Platform)
	if c.fake.Intents()&discordtest.IntentDirectMessageReactions == 0 {
		t.Fatal("the adapter does not ask for reactions in DMs")
	}
	alice := c.fake.AddUser("alice")
	carol := cv.User("carol")
	password := c.openRoom(t, alice)
	cv.Say(t, carol, password)
	cv.WaitText(t, carol.Chat, "You joined")
	ch := c.fake.DMChannel(alice.ID)
	aliceAddr := bridge.Addr{Platform: "discord", User: alice.ID, Chat: ch}
	mapped := func(who bridge.Addr, id string) {
		t.Helper()
		eventually(t, "the core to know "+id, func() bool {
			room, _, err := c.b.Store().RoomOf(who.Key())
			if err != nil {
				return false
			}
			_, ok := c.b.Store().Find(room.ID, who.Key(), id)
			return ok
		})
	}
	cvMsg := func(ss []bridgetest.Shown, text string) int {
		return slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return !s.Own && s.Msg.Text == text })
	}
	waitCV := func(what string, cond func([]bridgetest.Shown) bool) []bridgetest.Shown {
		t.Helper()
		return cv.WaitChat(t, carol.Chat, wait, what, cond)
	}
	botMsg := func(substr string) discordtest.Message {
		t.Helper()
		return c.dmWith(t, alice, 0, substr)
	}

	orig := c.fake.SendDM(alice.ID, "hello discord")
	ss := waitCV("alice's message", func(ss []bridgetest.Shown) bool { return cvMsg(ss, "hello discord") >= 0 })
	carolCopy := ss[cvMsg(ss, "hello discord")].ID
	mapped(carol, string(carolCopy))

	cv.Reply(t, carol, carolCopy, "hi alice")
	if got := botMsg("hi alice"); got.ReplyTo != orig || strings.Contains(got.Content, "↩") {
		t.Fatalf("alice got %+v, want a native reply to her message %s", got, orig)
	}
	carolOwn := ownOf(t, cv.Platform, carol.Chat, "hi alice")
	aliceCopy := botMsg("hi alice").ID
	mapped(aliceAddr, aliceCopy)

	c.fake.ReplyDM(alice.ID, aliceCopy, "and hi carol")
	ss = waitCV("alice's reply", func(ss []bridgetest.Shown) bool { return cvMsg(ss, "and hi carol") >= 0 })
	if got := ss[cvMsg(ss, "and hi carol")].Msg; got.ReplyTo != carolOwn {
		t.Fatalf("carol got alice's reply to %q, want her own message %q", got.ReplyTo, carolOwn)
	}

	c.fake.EditDM(alice.ID, orig, "hello discord, edited")
	waitCV("alice's edit", func(ss []bridgetest.Shown) bool {
		i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.ID == carolCopy })
		return i >= 0 && ss[i].Msg.Text == "hello discord, edited" && ss[i].Edits == 1
	})
	cv.Act(t, carol, bridge.ActionEdit, carolOwn, "hi alice!")
	c.waitFake(t, "carol's edit in alice's DM", func() bool {
		for _, m := range c.fake.Messages(ch) {
			if m.ID == aliceCopy {
				return m.Edits == 1 && strings.HasSuffix(m.Content, "hi alice!")
			}
		}
		return false
	})

	c.fake.ReactDM(alice.ID, aliceCopy, "👍", true)
	waitCV("👍 on carol's message", func(ss []bridgetest.Shown) bool {
		i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.ID == carolOwn })
		return i >= 0 && slices.Equal(ss[i].Reactions, []string{"👍"})
	})
	c.fake.ReactDM(alice.ID, aliceCopy, "👍", false)
	waitCV("👍 taken off", func(ss []bridgetest.Shown) bool {
		i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.ID == carolOwn })
		return i >= 0 && len(ss[i].Reactions) == 0
	})
	botReactions := func(what, id string, want ...string) {
		t.Helper()
		c.waitFake(t, what, func() bool {
			for _, m := range c.fake.Shown(ch) {
				if m.ID == id {
					return slices.Equal(m.BotReactions, want)
				}
			}
			return false
		})
	}
	cv.Act(t, carol, bridge.ActionReact, carolCopy, "🔥")
	botReactions("🔥 on alice's message", orig, "🔥")
	cv.Act(t, carol, bridge.ActionReact, carolCopy, "👀")
	botReactions("👀 too", orig, "🔥", "👀")
	cv.Act(t, carol, bridge.ActionUnreact, carolCopy, "🔥")
	botReactions("🔥 taken off", orig, "👀")

	c.fake.DeleteDM(alice.ID, orig)
	waitCV("alice's message deleted", func(ss []bridgetest.Shown) bool {
		return !slices.ContainsFunc(ss, func(s bridgetest.Shown) bool { return s.ID == carolCopy })
	})
	cv.Act(t, carol, bridge.ActionUnsend, carolOwn, "")
	c.waitFake(t, "carol's message deleted from alice's DM", func() bool {
		return !slices.ContainsFunc(c.fake.Messages(ch), func(m discordtest.Message) bool { return m.ID == aliceCopy })
	})
}

func ownOf(t *testing.T, p *bridgetest.Platform, chat, text string) bridge.MessageID {
	t.Helper()
	for _, s := range p.Chat(chat) {
		if s.Own && s.Text == text {
			return s.ID
		}
	}
	t.Fatalf("chat %s shows no own %q", chat, text)
	return ""
}
