package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// TestInviteLinksEverywhere runs the real binary on Telegram, Discord, Matrix and the web: /invite
// answers a link for each with one token; a Telegram user taps the t.me link (the bot gets "/start
// <token>", which is deleted at once), a Discord user sends "/join <token>", a Matrix user sends the
// bare token and a web visitor sends what the page sends for <url>/#join=<token>; all four join. The
// token never appears in kumo's output (secret).
func TestInviteLinksEverywhere(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k, tg, dc := startWithFakes(t, ctx, setup{Lifetime: time.Hour, Matrix: true, Web: true})

	alice := newTG(tg, "Inviter")
	alice.send(t, ctx, "/newroom")
	waitSeen(t, ctx, alice, 0, "the room open", contains("room is open"))
	mark := len(alice.seen())
	alice.send(t, ctx, "/invite")
	_, text := waitSeen(t, ctx, alice, mark, "invite links", contains("Invite links"))

	tgLink := regexp.MustCompile(`telegram: https://t\.me/` + regexp.QuoteMeta(tg.Me().Username) + `\?start=([A-Za-z0-9_-]{22})`).FindStringSubmatch(text)
	if tgLink == nil {
		t.Fatalf("no t.me link for @%s in %q", tg.Me().Username, text)
	}
	token := secret(tgLink[1])
	for _, want := range []string{
		"web: " + k.url + "/#join=" + token,
		"matrix: https://matrix.to/#/" + k.matrixBot + " then send: /join " + token,
		"discord: https://discord.com/users/" + dc.Bot.ID + " then send the bot: /join " + token,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the invite lacks %q:\n%s", want, text)
		}
	}

	bob, carol, dave, erin := newTG(tg, "Tapper"), newDC(dc, "sender"), newMX(t, ctx, k, "invitee"), newWeb(t, ctx, k)
	joins := []struct {
		p    person
		text string
	}{
		{bob, "/start " + token},
		{carol, "/join " + token},
		{dave, token},
		{erin, "/join " + token},
	}
	for _, j := range joins {
		j.p.send(t, ctx, j.text)
		waitSeen(t, ctx, j.p, 0, "the join", contains("You joined the room as "))
	}
	waitSeen(t, ctx, alice, mark, "the fifth member", contains("joined. 5 members"))
	if _, err := tg.WaitShows(ctx, bob.u.ID, func(ss []telegramtest.Shown) bool {
		for _, s := range ss {
			if s.Incoming && strings.Contains(s.Text, token) {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("the tapped /start <token> stays in the Telegram chat: %v", err)
	}
}
