package discord

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// TestCoreJoinBySendingTheToken: /invite names the bot's profile and the token to send; a Discord
// user who sends it, as a DM or with the slash command, joins; a revoked token is refused.
func TestCoreJoinBySendingTheToken(t *testing.T) {
	c := startCore(t, discordtest.Options{})
	alice, bob, carol, dave := c.fake.AddUser("alice"), c.fake.AddUser("bob"), c.fake.AddUser("carol"), c.fake.AddUser("dave")
	c.openRoom(t, alice)
	n := c.dmCount(alice)
	c.fake.SendDM(alice.ID, "/invite")
	answer := c.dmWith(t, alice, n, "Invite links")
	// The text is Discord markdown: _ and - in the token come escaped, and show unescaped.
	m := regexp.MustCompile(`https://discord\.com/users/` + c.fake.Bot.ID + ` then send the bot: /join ([A-Za-z0-9_-]{22})`).FindStringSubmatch(strings.ReplaceAll(answer.Content, `\`, ""))
	if m == nil {
		t.Fatalf("no discord invite for the bot in %q", answer.Content)
	}
	token := m[1]
	c.fake.SendDM(bob.ID, "/join "+token)
	c.dmWith(t, bob, 0, "You joined the room")
	if _, err := c.fake.SlashCommand(carol.ID, c.fake.DMChannel(carol.ID), "join", map[string]string{"password": token}); err != nil {
		t.Fatal(err)
	}
	c.dmWith(t, carol, 0, "You joined the room")

	n = c.dmCount(alice)
	if _, err := c.fake.SlashCommand(alice.ID, c.fake.DMChannel(alice.ID), "invite", map[string]string{"what": "revoke"}); err != nil {
		t.Fatal(err)
	}
	c.dmWith(t, alice, n, "Cancelled 1 invite link")
	c.fake.SendDM(dave.ID, token)
	c.dmWith(t, dave, 0, "no live room has that password or invite")
}

// TestCommandsAreTheBridgesCommands: the registered application commands are the core's, with the
// same names and texts, in the same order.
func TestCommandsAreTheBridgesCommands(t *testing.T) {
	c := startCore(t, discordtest.Options{})
	want := c.b.Commands()
	got := c.fake.Commands()
	if len(got) != len(want) {
		t.Fatalf("%d application commands, the core has %d", len(got), len(want))
	}
	for i, raw := range got {
		var cmd struct{ Name, Description string }
		if err := json.Unmarshal(raw, &cmd); err != nil {
			t.Fatal(err)
		}
		if cmd.Name != want[i].Name || cmd.Description != want[i].Description {
			t.Errorf("command %d = %q %q, want %q %q", i, cmd.Name, cmd.Description, want[i].Name, want[i].Description)
		}
	}
	if !strings.Contains(string(got[0]), "open a room for 24h") {
		t.Errorf("the lifetime is not in /newroom's text: %s", got[0])
	}
}
