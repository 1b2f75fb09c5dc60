package bridge_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

var tokenRe = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// invite has from ask for an invite (args "" or "once") and returns its token.
func invite(t *testing.T, p *bridgetest.Platform, from bridge.Addr, args string) (string, bridge.Message) {
	t.Helper()
	before := len(p.Messages(from.Chat))
	p.Say(t, from, strings.TrimSpace("/invite "+args))
	var m bridge.Message
	p.WaitFor(t, from.Chat, wait, "invite links", func(ms []bridge.Message) bool {
		for _, x := range ms[before:] {
			if strings.Contains(x.Text, "Invite links") {
				m = x
				return true
			}
		}
		return false
	})
	if !tokenRe.MatchString(m.Code) {
		t.Fatalf("invite token %q is not 22 characters of base64url", m.Code)
	}
	return m.Code, m
}

// TestInviteTokens: people join by every form a token arrives in; single-use and revoked tokens
// are refused; only the platforms that make links get one.
func TestInviteTokens(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0 })
	h.tg.SetInviteLink(func(tok string) string { return "https://t.me/kumo_bot?start=" + tok })
	alice := h.tg.User("alice")
	password := h.openRoom(t, h.tg, alice, "")

	tok, m := invite(t, h.tg, alice, "")
	if !strings.Contains(m.Text, "• tg: https://t.me/kumo_bot?start="+tok) {
		t.Fatalf("invite answer lacks the tg link:\n%s", m.Text)
	}
	if strings.Contains(m.Text, "• dc:") || strings.Contains(m.String(), password) {
		t.Fatalf("invite answer names a platform without links, or the password:\n%s", m.String())
	}
	joins := []struct {
		p    *bridgetest.Platform
		who  string
		text string
	}{
		{h.tg, "bob", "/start " + tok}, // Telegram's deep link
		{h.dc, "carol", "/join " + tok},
		{h.dc, "dave", tok}, // the bare token
		{h.tg, "erin", "!join " + tok},
	}
	for _, j := range joins {
		who := j.p.User(j.who)
		j.p.Say(t, who, j.text)
		j.p.WaitText(t, who.Chat, "You joined the room")
	}

	once, _ := invite(t, h.tg, alice, "once")
	frank, gina := h.dc.User("frank"), h.dc.User("gina")
	h.dc.Say(t, frank, "/join "+once)
	h.dc.WaitText(t, frank.Chat, "You joined the room")
	h.dc.Say(t, gina, "/join "+once)
	h.dc.WaitText(t, gina.Chat, "No live room has that password or invite")

	bob := h.tg.User("bob")
	h.tg.Say(t, bob, "/invite revoke")
	h.tg.WaitText(t, bob.Chat, "Only the room's creator can cancel")
	h.tg.Say(t, alice, "/invite revoke")
	h.tg.WaitText(t, alice.Chat, "Cancelled 1 invite link")
	h.dc.Say(t, gina, tok)
	h.dc.WaitText(t, gina.Chat, "no live room has that password or invite")
	// The password is untouched by a revoke.
	h.dc.Say(t, gina, password)
	h.dc.WaitText(t, gina.Chat, "You joined the room")
	if r, _, _ := h.b.Store().RoomOf(alice.Key()); len(r.Members) != 7 {
		t.Fatalf("%d members, want 7", len(r.Members))
	}

	outsider := h.dc.User("zed")
	h.dc.Say(t, outsider, "/invite")
	h.dc.WaitText(t, outsider.Chat, "You are not in a room")
}

// TestWrongTokensCountAsWrongPasswords: guessing tokens uses up the same budget as guessing passwords.
func TestWrongTokensCountAsWrongPasswords(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0; c.Rooms.MaxFailures = 2 })
	alice, mallory := h.tg.User("alice"), h.dc.User("mallory")
	password := h.openRoom(t, h.tg, alice, "")
	tok, _ := invite(t, h.tg, alice, "")
	h.dc.Say(t, mallory, "/start AAAAAAAAAAAAAAAAAAAAAA")
	h.dc.Say(t, mallory, "/join BBBBBBBBBBBBBBBBBBBBBB")
	h.dc.Say(t, mallory, "/join "+tok)
	h.dc.WaitText(t, mallory.Chat, "Too many wrong passwords")
	h.dc.Say(t, mallory, password)
	if _, _, err := h.b.Store().RoomOf(mallory.Key()); err == nil {
		t.Fatal("a throttled guesser got in")
	}
}

func TestKickLockUnlock(t *testing.T) {
	h := startWipe(t, func(c *bridge.Config) { c.PriceSat = 0 })
	alice, bob, carol := h.tg.User("alice"), h.tg.User("bob"), h.dc.User("carol")
	password := h.openRoom(t, h.tg, alice, "")
	h.say(t, h.tg, bob, password)
	h.tg.WaitText(t, bob.Chat, "You joined the room")
	h.say(t, h.dc, carol, password)
	h.dc.WaitText(t, carol.Chat, "You joined the room")
	bobNick := nickOf(t, &h.harness, bob)
	h.say(t, h.tg, bob, "hello all")
	h.dc.WaitFor(t, carol.Chat, wait, "bob's words", hasRelay(bobNick, "hello all"))

	for _, c := range []struct {
		p    *bridgetest.Platform
		who  bridge.Addr
		text string
		want string
	}{
		{h.dc, carol, "/kick " + bobNick, "Only the room's creator can remove"},
		{h.dc, carol, "/lock", "Only the room's creator can lock"},
		{h.tg, alice, "/kick nobody here", "No member of this room has that pseudonym"},
		{h.tg, alice, "/kick", "Send /kick followed by"},
		{h.tg, alice, "/kick " + nickOf(t, &h.harness, alice), "You cannot remove yourself"},
	} {
		c.p.Say(t, c.who, c.text)
		c.p.WaitText(t, c.who.Chat, c.want)
	}

	h.say(t, h.tg, alice, "/kick "+strings.ToUpper(bobNick))
	// Bob's chat is wiped like a /leave, and he is told why.
	h.checkWiped(t, wipedMember{p: h.tg, who: bob, theirs: true, delete: true, notice: "removed you from the room"})
	h.dc.WaitText(t, carol.Chat, bobNick+" was removed by the creator. 2 members")
	h.tg.Say(t, bob, password)
	h.tg.WaitText(t, bob.Chat, "cannot join it again")
	if _, _, err := h.b.Store().RoomOf(bob.Key()); err == nil {
		t.Fatal("a kicked member rejoined")
	}

	h.tg.Say(t, alice, "/lock")
	h.dc.WaitText(t, carol.Chat, "The creator locked the room")
	h.tg.WaitText(t, alice.Chat, "The creator locked the room")
	dave := h.dc.User("dave")
	h.dc.Say(t, dave, password)
	h.dc.WaitText(t, dave.Chat, "That room is locked")
	h.dc.Say(t, carol, "/info")
	h.dc.WaitText(t, carol.Chat, "It is locked")
	h.tg.Say(t, alice, "/lock")
	h.tg.WaitText(t, alice.Chat, "already locked")
	h.tg.Say(t, alice, "/unlock")
	h.dc.WaitText(t, carol.Chat, "The creator unlocked the room")
	h.dc.Say(t, dave, password)
	h.dc.WaitText(t, dave.Chat, "You joined the room")

}

// extendInvoice has from send /extend and returns the invoice it is answered with.
func extendInvoice(t *testing.T, p *bridgetest.Platform, from bridge.Addr) *bridge.Invoice {
	t.Helper()
	before := len(p.Messages(from.Chat))
	p.Say(t, from, "/extend")
	var inv *bridge.Invoice
	p.WaitFor(t, from.Chat, wait, "an extension invoice", func(ms []bridge.Message) bool {
		inv = lastInvoice(ms[before:])
		return inv != nil
	})
	return inv
}

// countText counts the chat's messages containing s.
func countText(ms []bridge.Message, s string) int {
	n := 0
	for _, m := range ms {
		if strings.Contains(m.String(), s) {
			n++
		}
	}
	return n
}

// TestExtendPaid: a member pays another rent; only then is the room extended and the invoice
// settled; the end and its warning move with it; past the cap there is no invoice at all.
func TestExtendPaid(t *testing.T) {
	const life = 2 * time.Second
	h := start(t, func(c *bridge.Config) {
		c.Rooms.Lifetime = life
		c.Rooms.MaxLifetime = 2 * life
		c.Rooms.Warnings = []time.Duration{life / 2}
	})
	alice, bob, _ := h.aliceAndBob(t)
	before, _, _ := h.b.Store().RoomOf(alice.Key())

	inv := extendInvoice(t, h.dc, bob)
	if inv.AmountSat != 10_000 {
		t.Fatalf("extension costs %d sat, want the room's price", inv.AmountSat)
	}
	if r, _, _ := h.b.Store().RoomOf(alice.Key()); !r.ExpiresAt.Equal(before.ExpiresAt) {
		t.Fatal("the room was extended before it was paid")
	}
	if err := h.dev.Pay(context.Background(), inv.ID); err != nil {
		t.Fatal(err)
	}
	notice := h.tg.WaitText(t, alice.Chat, "extended the room by 2s")
	waitState(t, h.dev, inv.ID, "SETTLED")
	after, _, _ := h.b.Store().RoomOf(alice.Key())
	if got := after.ExpiresAt.Sub(before.ExpiresAt); got != life {
		t.Fatalf("room's end moved by %s, want %s", got, life)
	}
	if notice.Room == nil || !notice.Room.EndsAt.Equal(after.ExpiresAt) {
		t.Fatalf("the notice carries room state %+v, want the new end %s", notice.Room, after.ExpiresAt)
	}
	h.dc.WaitText(t, bob.Chat, "extended the room by 2s")

	// The cap is reached: no invoice, a clear answer.
	n := len(h.dc.Messages(bob.Chat))
	h.dc.Say(t, bob, "/extend")
	h.dc.WaitText(t, bob.Chat, "a room lives at most 4s")
	if lastInvoice(h.dc.Messages(bob.Chat)[n:]) != nil {
		t.Fatal("an invoice for an extension that cannot be applied")
	}

	end := h.tg.WaitText(t, alice.Chat, "has self-destructed")
	if now := time.Now(); now.Before(after.ExpiresAt) {
		t.Fatalf("the room ended %s before its new end", after.ExpiresAt.Sub(now))
	}
	if end.Room == nil || !end.Room.Closed {
		t.Fatalf("end notice state %+v", end.Room)
	}
	// The warning came once, on the new schedule (the old one's is cancelled).
	if got := countText(h.tg.Messages(alice.Chat), "self-destructs in 1s"); got != 1 {
		t.Fatalf("%d one-second warnings, want 1:\n%s", got, bridgetest.Dump(h.tg.Messages(alice.Chat)))
	}
}

// TestExtendCancelledWhenItCannotApply: an extension paid for a room that ended, or one that no
// longer fits under the cap, is cancelled and the payer told.
func TestExtendCancelledWhenItCannotApply(t *testing.T) {
	t.Run("room ended", func(t *testing.T) {
		h := start(t, nil)
		alice, bob, _ := h.aliceAndBob(t)
		inv := extendInvoice(t, h.dc, bob)
		h.tg.Say(t, alice, "/destroy")
		h.dc.WaitText(t, bob.Chat, "destroyed")
		if err := h.dev.Pay(context.Background(), inv.ID); err != nil {
			t.Fatal(err)
		}
		waitState(t, h.dev, inv.ID, "CANCELED")
		h.dc.WaitText(t, bob.Chat, "could not be extended: the room has ended")
	})
	t.Run("cap reached meanwhile", func(t *testing.T) {
		h := start(t, func(c *bridge.Config) { c.Rooms.Lifetime = time.Hour; c.Rooms.MaxLifetime = 2 * time.Hour })
		alice, bob, _ := h.aliceAndBob(t)
		first := extendInvoice(t, h.tg, alice)
		second := extendInvoice(t, h.dc, bob)
		if err := h.dev.Pay(context.Background(), first.ID); err != nil {
			t.Fatal(err)
		}
		waitState(t, h.dev, first.ID, "SETTLED")
		if err := h.dev.Pay(context.Background(), second.ID); err != nil {
			t.Fatal(err)
		}
		waitState(t, h.dev, second.ID, "CANCELED")
		h.dc.WaitText(t, bob.Chat, "could not be extended: a room lives at most 2h")
		r, _, _ := h.b.Store().RoomOf(alice.Key())
		if got := r.ExpiresAt.Sub(r.OpenedAt); got != 2*time.Hour {
			t.Fatalf("room lives %s, want 2h", got)
		}
	})
	t.Run("payer left meanwhile", func(t *testing.T) {
		h := start(t, nil)
		alice, bob, _ := h.aliceAndBob(t)
		inv := extendInvoice(t, h.dc, bob)
		before, _, _ := h.b.Store().RoomOf(alice.Key())
		h.dc.Say(t, bob, "/leave")
		h.tg.WaitText(t, alice.Chat, "left. 1 member")
		if err := h.dev.Pay(context.Background(), inv.ID); err != nil {
			t.Fatal(err)
		}
		waitState(t, h.dev, inv.ID, "CANCELED")
		h.dc.WaitText(t, bob.Chat, "you are no longer in it")
		if after, _, _ := h.b.Store().RoomOf(alice.Key()); !after.ExpiresAt.Equal(before.ExpiresAt) {
			t.Fatal("a payment that was cancelled extended the room")
		}
	})
	t.Run("a second /extend replaces the first invoice", func(t *testing.T) {
		h := start(t, nil)
		alice := h.tg.User("alice")
		h.openRoom(t, h.tg, alice, "")
		first := extendInvoice(t, h.tg, alice)
		second := extendInvoice(t, h.tg, alice)
		waitState(t, h.dev, first.ID, "CANCELED")
		if err := h.dev.Pay(context.Background(), second.ID); err != nil {
			t.Fatal(err)
		}
		waitState(t, h.dev, second.ID, "SETTLED")
	})
}

// TestExtendFree: with free rooms an extension is free too, applied at once, and still capped.
func TestExtendFree(t *testing.T) {
	h := start(t, func(c *bridge.Config) {
		c.PriceSat = 0
		c.Rooms.Lifetime = time.Hour
		c.Rooms.MaxLifetime = 2 * time.Hour
	})
	alice := h.tg.User("alice")
	h.openRoom(t, h.tg, alice, "")
	h.tg.Say(t, alice, "/extend")
	h.tg.WaitText(t, alice.Chat, "extended the room by 1h")
	h.tg.Say(t, alice, "/extend")
	h.tg.WaitText(t, alice.Chat, "This room cannot be extended: a room lives at most 2h")
	if lastInvoice(h.tg.Messages(alice.Chat)) != nil {
		t.Fatal("a free room's extension sent an invoice")
	}
}

// TestCommandsOneSource: /help lists exactly the commands every menu is made from, with the
// configured lifetime in their texts.
func TestCommandsOneSource(t *testing.T) {
	h := start(t, func(c *bridge.Config) { c.PriceSat = 0; c.Rooms.Lifetime = 90 * time.Minute })
	alice := h.tg.User("alice")
	h.tg.Say(t, alice, "/help")
	help := h.tg.WaitText(t, alice.Chat, "/newroom").Text
	cmds := bridge.MenuOf(h.b)
	var names []string
	for _, c := range cmds {
		names = append(names, c.Name)
		line := "/" + c.Name
		if c.Args != "" {
			line += " " + c.Args
		}
		line += ": " + c.Description + "\n"
		if !strings.Contains(help, line) {
			t.Errorf("/help lacks %q", line)
		}
	}
	for _, want := range []string{"invite", "kick", "lock", "unlock", "extend"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("command %s missing from the list", want)
		}
	}
	if !strings.Contains(help, "open a room for 1h 30m") || !strings.Contains(help, "open 1h 30m longer") {
		t.Errorf("the configured lifetime is not in the texts:\n%s", help)
	}
	if got := strings.Count(help, "\n/"); got != len(cmds) {
		t.Errorf("/help lists %d commands, the menu %d", got, len(cmds))
	}
	if def := bridge.MenuOf(bridge.HandlerFunc(nil)); def[0].Description != strings.ReplaceAll(cmds[0].Description, "1h 30m", "24h") {
		t.Errorf("a handler that is not the bridge gets %q", def[0].Description)
	}

}
