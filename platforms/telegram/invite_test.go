package telegram_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// TestCoreJoinByDeepLink: /invite answers a t.me link for this bot; tapping it sends "/start
// <token>", which joins the room and is deleted from the chat at once.
func TestCoreJoinByDeepLink(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	w.openRoom(t, alice)
	n := len(w.s.Sent(alice.ID))
	w.say(alice, "/invite once")
	answer := w.waitText(t, alice, n, "Invite links")
	link := regexp.MustCompile(`https://t\.me/` + regexp.QuoteMeta(w.s.Me().Username) + `\?start=([A-Za-z0-9_-]{22})\b`).FindStringSubmatch(answer.Text)
	if link == nil {
		t.Fatalf("no t.me link for @%s in %q", w.s.Me().Username, answer.Text)
	}
	token := link[1]
	if code(t, answer) != token {
		t.Fatalf("the token to send (%q) is not the link's (%q)", code(t, answer), token)
	}

	start := "/start " + token
	w.say(bob, start)
	w.waitText(t, bob, 0, "You joined the room")
	if _, err := w.s.WaitShows(w.ctx, bob.ID, func(ss []telegramtest.Shown) bool {
		for _, s := range ss {
			if s.Incoming && strings.Contains(s.Text, token) {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("bob's chat still shows %q: %v", start, err)
	}
	// Single use: the same link lets no one else in, and is deleted all the same.
	w.say(carol, start)
	w.waitText(t, carol, 0, "No live room has that password or invite")
	if _, err := w.s.WaitShows(w.ctx, carol.ID, func(ss []telegramtest.Shown) bool {
		for _, s := range ss {
			if s.Incoming && strings.Contains(s.Text, token) {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("carol's chat still shows the token: %v", err)
	}
	// A plain /start is the welcome, and stays.
	w.say(carol, "/start")
	w.waitText(t, carol, 1, "kumo: anonymous chat rooms")
}

// TestMenuIsTheBridgesCommands: setMyCommands registers exactly the core's commands, described with
// the configured lifetime, in /help's order.
func TestMenuIsTheBridgesCommands(t *testing.T) {
	w := startWorld(t, unlimited(), func(c *bridge.Config) { c.Rooms.Lifetime = 6 * time.Hour })
	if err := w.s.WaitCalls(w.ctx, "setMyCommands", 1); err != nil {
		t.Fatal(err)
	}
	var got []struct{ Command, Description string }
	if err := json.Unmarshal(w.s.Commands(), &got); err != nil {
		t.Fatal(err)
	}
	want := w.b.Commands()
	if len(got) != len(want) {
		t.Fatalf("menu has %d commands, the core %d", len(got), len(want))
	}
	for i, c := range want {
		d := c.Description
		if c.Args != "" {
			d = c.Args + ": " + d
		}
		if got[i].Command != c.Name || got[i].Description != d {
			t.Errorf("menu entry %d = %q %q, want %q %q", i, got[i].Command, got[i].Description, c.Name, d)
		}
	}
	if !strings.Contains(string(w.s.Commands()), "open a room for 6h") {
		t.Errorf("the configured lifetime is not in the menu: %s", w.s.Commands())
	}
}
