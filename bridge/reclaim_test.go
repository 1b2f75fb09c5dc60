package bridge_test

import (
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/rooms"
)

// creatorKey is the key the creator was shown when the room opened.
func creatorKey(t *testing.T, h *harness, chat string) string {
	t.Helper()
	m := h.tg.WaitText(t, chat, "Your creator key")
	if !rooms.LooksLikeCreatorKey(m.Code) {
		t.Fatalf("creator key %q", m.Code)
	}
	return m.Code
}

// TestReclaim: the creator loses their chat and is the creator again from another one, on another
// platform, however they send the key.
func TestReclaim(t *testing.T) {
	tests := []struct {
		name string
		send func(key string) string
	}{
		{"command", func(key string) string { return "/reclaim " + key }},
		{"join", func(key string) string { return "/join " + key }},
		{"bare key", func(key string) string { return "  " + strings.ToUpper(key) + " " }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, nil)
			alice, bob, alice2 := h.tg.User("alice"), h.tg.User("bob"), h.dc.User("alice2")
			pw := h.openRoom(t, h.tg, alice, "")
			key := creatorKey(t, h, alice.Chat)
			if strings.Contains(h.logs.String(), key) || strings.Contains(h.logs.String(), pw) {
				t.Error("the log holds the creator key or the password")
			}
			h.tg.Say(t, bob, pw)
			h.tg.WaitText(t, bob.Chat, "You joined the room")
			h.tg.Say(t, bob, "/destroy")
			h.tg.WaitText(t, bob.Chat, "Only the room's creator")
			nick := h.tg.WaitText(t, alice.Chat, "joined").Room.Nick

			h.dc.Say(t, alice2, tc.send(key))
			back := h.dc.WaitText(t, alice2.Chat, "You are the room's creator again")
			if back.Room == nil || !back.Room.Creator || back.Room.Nick != nick || back.Room.Members != 2 {
				t.Errorf("reclaimed state %+v, want creator %q of 2", back.Room, nick)
			}
			if m := h.tg.WaitText(t, alice.Chat, "creator key was used in another chat"); m.Room == nil || !m.Room.Closed {
				t.Errorf("the old chat's state %+v, want closed", m.Room)
			}
			// The room goes on with alice's words from her new chat, under her pseudonym.
			h.dc.Say(t, alice2, "still here")
			h.tg.WaitFor(t, bob.Chat, wait, "alice's words", func(ms []bridge.Message) bool {
				rs := relays(ms)
				return len(rs) == 1 && rs[0].From == nick && rs[0].Text == "still here"
			})
			h.tg.Say(t, alice, "/info")
			h.tg.WaitText(t, alice.Chat, "You are not in a room")
			// Nobody was told anything: the room kept its members.
			for _, m := range h.tg.Messages(bob.Chat) {
				if m.Kind == bridge.KindNotice && (strings.Contains(m.Text, "left") || strings.Contains(m.Text, "joined")) {
					t.Errorf("bob was told %q", m.Text)
				}
			}
			h.dc.Say(t, alice2, "/destroy")
			h.tg.WaitText(t, bob.Chat, "The creator destroyed this room")
			h.dc.WaitText(t, alice2.Chat, "The creator destroyed this room")
		})
	}
}

// TestReclaimRefused: a key that opens nothing, a reclaimer in another room, a key once the room is
// gone.
func TestReclaimRefused(t *testing.T) {
	h := start(t, nil)
	alice, carol := h.tg.User("alice"), h.tg.User("carol")
	h.openRoom(t, h.tg, alice, "")
	key := creatorKey(t, h, alice.Chat)

	h.tg.Say(t, carol, "/reclaim kumo-aaaaaaaaaaaaaaaaaaaaaaaaaa")
	h.tg.WaitText(t, carol.Chat, "No live room has that creator key")
	h.tg.Say(t, carol, "/reclaim")
	h.tg.WaitText(t, carol.Chat, "Send /reclaim followed by the creator key")
	h.openRoom(t, h.tg, carol, "")
	h.tg.Say(t, carol, "/reclaim "+key)
	h.tg.WaitText(t, carol.Chat, "You are in another room")

	h.tg.Say(t, alice, "/destroy")
	h.tg.WaitText(t, alice.Chat, "The creator destroyed this room")
	h.tg.Say(t, alice, key)
	h.tg.WaitText(t, alice.Chat, "No live room has that creator key")
	// A password shaped like a key could never be joined with: it is refused.
	h.tg.Say(t, alice, "/newroom "+key)
	h.tg.WaitText(t, alice.Chat, "That looks like a creator key, not a password")
}

// TestLeftPlatform: a person their platform reports gone leaves their room at once; the others are
// told, and the seat is free for someone else.
func TestLeftPlatform(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.Rooms.MaxMembers = 2 })
	alice, bob, carol := h.tg.User("alice"), h.dc.User("bob"), h.tg.User("carol")
	pw := h.openRoom(t, h.tg, alice, "")
	h.dc.Say(t, bob, pw)
	h.dc.WaitText(t, bob.Chat, "You joined the room")
	bobNick := h.tg.WaitText(t, alice.Chat, "joined").Text
	bobNick = strings.TrimSuffix(bobNick, " joined. 2 members.")
	h.tg.Say(t, carol, pw)
	h.tg.WaitText(t, carol.Chat, "That room is full")

	h.dc.Gone(t, bob)
	if m := h.tg.WaitText(t, alice.Chat, bobNick+" left. 1 member."); m.Kind != bridge.KindNotice || m.Room == nil || m.Room.Members != 1 {
		t.Errorf("alice was told %+v", m)
	}
	if _, members := h.b.Store().Counts(); members != 1 {
		t.Errorf("%d members, want 1", members)
	}
	h.tg.Say(t, carol, pw)
	h.tg.WaitText(t, carol.Chat, "You joined the room")
	h.tg.WaitFor(t, alice.Chat, wait, "carol's arrival", func(ms []bridge.Message) bool {
		n := 0
		for _, m := range ms {
			if m.Kind == bridge.KindNotice && strings.HasSuffix(m.Text, "joined. 2 members.") {
				n++
			}
		}
		return n == 2
	})
	// Gone twice, or gone while in no room: nothing happens, nobody is told.
	before := len(h.tg.Messages(alice.Chat))
	h.dc.Gone(t, bob)
	h.tg.Say(t, alice, "/who")
	h.tg.WaitText(t, alice.Chat, "2 members in this room")
	if ms := h.tg.Messages(alice.Chat)[before:]; len(ms) != 1 {
		t.Errorf("alice got %d messages, want only the /who answer:\n%s", len(ms), bridgetest.Dump(ms))
	}
}
