package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

func TestStartRegistersCommandsWithoutPrivilegedIntents(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	e.run(t, &bridgetest.Inbox{})

	if got, want := e.fake.Intents(), discordtest.IntentDirectMessages|discordtest.IntentDirectMessageReactions; got != want {
		t.Errorf("intents = %#x, want only DIRECT_MESSAGES and DIRECT_MESSAGE_REACTIONS (%#x)", got, want)
	}
	type option struct {
		Name     string `json:"name"`
		Required bool   `json:"required"`
	}
	type command struct {
		Name     string   `json:"name"`
		Options  []option `json:"options"`
		Contexts []int    `json:"contexts"`
	}
	got := map[string]command{}
	for _, raw := range e.fake.Commands() {
		var c command
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		got[c.Name] = c
	}
	want := map[string][]option{
		"newroom": {{"password", false}}, "join": {{"password", true}}, "leave": nil, "who": nil,
		"info": nil, "nick": {{"name", true}}, "destroy": nil, "help": nil, "unsend": nil,
		"invite": {{"what", false}}, "kick": {{"pseudonym", true}}, "lock": nil, "unlock": nil, "extend": nil,
		"reclaim": {{"key", true}},
	}
	if len(got) != len(want) {
		t.Errorf("registered %d commands, want %d", len(got), len(want))
	}
	for name, opts := range want {
		c, ok := got[name]
		if !ok {
			t.Errorf("command %s not registered", name)
			continue
		}
		if !slices.Equal(c.Options, opts) {
			t.Errorf("/%s options = %+v, want %+v", name, c.Options, opts)
		}
		if !slices.Equal(c.Contexts, []int{0, 1}) {
			t.Errorf("/%s contexts = %v, want guild and bot DM", name, c.Contexts)
		}
	}
	// The invite URL is logged just after the registration the fake saw.
	eventually(t, "the invite URL in the log", func() bool {
		logs := e.logs.String()
		return strings.Contains(logs, "client_id="+e.fake.Bot.ID) && strings.Contains(logs, "scope=bot+applications.commands")
	})
}

func TestRunFailsOnBadToken(t *testing.T) {
	fake := discordtest.New(discordtest.Options{})
	t.Cleanup(fake.Close)
	a, err := New(Config{Token: "wrong", APIURL: fake.URL}, slogDiscard())
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(context.Background(), &bridgetest.Inbox{})
	var re *discordgo.RESTError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized || !errors.Is(err, bridge.ErrUnauthorized) {
		t.Fatalf("Run with a bad token = %v, want the 401 as bridge.ErrUnauthorized", err)
	}
}

func TestInboundDMs(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	in := &bridgetest.Inbox{}
	e.run(t, in)
	alice := e.fake.AddUser("alice")
	dm := e.fake.DMChannel(alice.ID)
	guild, _ := e.fake.AddGuild()
	from := bridge.Addr{Platform: "discord", User: alice.ID, Chat: dm}

	e.fake.SendGuildMessage(alice.ID, guild, "/who in a server") // not even dispatched: no guild intent
	join := bridge.MessageID(e.fake.SendDM(alice.ID, "/join correct horse"))
	cat := bridge.MessageID(e.fake.SendDM(alice.ID, "", "cat.jpg"))
	look := bridge.MessageID(e.fake.SendDM(alice.ID, "look", "cat.jpg"))
	// The bot's own DM comes back as MESSAGE_CREATE too; it must not be taken as alice's.
	if _, err := e.a.SendText(context.Background(), from, bridge.Message{Kind: bridge.KindReply, Text: "echo?"}); err != nil {
		t.Fatal(err)
	}
	last := bridge.MessageID(e.fake.SendDM(alice.ID, "last"))

	// Each carries the id of alice's own message (both halves of a text with a file: one message).
	want := []bridge.Inbound{
		{From: from, Text: "/join correct horse", ID: join},
		{From: from, ID: cat, Attachments: []bridge.Attachment{{Kind: bridge.MediaFile, Name: "cat.jpg"}}},
		{From: from, Text: "look", ID: look, Attachments: []bridge.Attachment{{Kind: bridge.MediaFile, Name: "cat.jpg"}}},
		{From: from, Text: "last", ID: last},
	}
	eventually(t, "four inbound messages", func() bool { return len(in.All()) >= len(want) })
	if got := in.All(); !slices.EqualFunc(got, want, bridgetest.SameInbound) {
		t.Fatalf("inbound =\n%+v\nwant\n%+v", got, want)
	}
}

func TestSlashCommands(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	in := &bridgetest.Inbox{}
	e.run(t, in)
	alice := e.fake.AddUser("alice")
	_, guildChannel := e.fake.AddGuild()

	t.Run("in a server: ephemeral, continues in the DM", func(t *testing.T) {
		before := len(in.All())
		if _, err := e.fake.SlashCommand(alice.ID, guildChannel, "join", map[string]string{"password": "correct horse"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the command", func() bool { return len(in.All()) > before })
		dm := e.fake.DMChannel(alice.ID)
		want := bridge.Inbound{From: bridge.Addr{Platform: "discord", User: alice.ID, Chat: dm}, Text: "/join correct horse"}
		if got := in.All()[before]; !bridgetest.SameInbound(got, want) {
			t.Fatalf("inbound = %+v, want %+v", got, want)
		}
		if _, err := e.a.SendText(context.Background(), want.From, bridge.Message{Kind: bridge.KindReply, Text: "You joined"}); err != nil {
			t.Fatal(err)
		}
		server := e.fake.Messages(guildChannel)
		if len(server) != 1 || !server[0].Ephemeral() || server[0].Content != "Continuing in your DMs." {
			t.Fatalf("server channel got %+v, want only the ephemeral pointer to the DM", server)
		}
		if got := contents(e.fake.Messages(dm)); !slices.Equal(got, []string{"You joined"}) {
			t.Fatalf("DM got %q", got)
		}
	})

	t.Run("in the DM: the answer is the interaction's response", func(t *testing.T) {
		dm := e.fake.DMChannel(alice.ID)
		before := len(in.All())
		it, err := e.fake.SlashCommand(alice.ID, dm, "nick", map[string]string{"name": "Ali"})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the command", func() bool { return len(in.All()) > before })
		want := bridge.Inbound{From: bridge.Addr{Platform: "discord", User: alice.ID, Chat: dm}, Text: "/nick Ali"}
		if got := in.All()[before]; !bridgetest.SameInbound(got, want) {
			t.Fatalf("inbound = %+v, want %+v", got, want)
		}
		for _, text := range []string{"You are now Ali.", "next"} {
			if _, err := e.a.SendText(context.Background(), want.From, bridge.Message{Kind: bridge.KindReply, Text: text}); err != nil {
				t.Fatal(err)
			}
		}
		ms := e.fake.Messages(dm)
		if len(ms) < 2 {
			t.Fatalf("DM got %+v", ms)
		}
		answer, next := ms[len(ms)-2], ms[len(ms)-1]
		if answer.Interaction != it.ID || answer.Deferred || answer.Content != "You are now Ali." {
			t.Errorf("answer = %+v, want the interaction's response with the core's reply", answer)
		}
		if next.Interaction != "" || next.Content != "next" {
			t.Errorf("the message after the answer = %+v, want a plain message", next)
		}
	})

	t.Run("options become the command's arguments", func(t *testing.T) {
		dm := e.fake.DMChannel(alice.ID)
		for _, tc := range []struct {
			name string
			opts map[string]string
			want string
		}{
			{"newroom", nil, "/newroom"},
			{"newroom", map[string]string{"password": "  my own words  "}, "/newroom my own words"},
			{"leave", nil, "/leave"},
			{"who", nil, "/who"},
			{"info", nil, "/info"},
			{"destroy", nil, "/destroy"},
			{"reclaim", map[string]string{"key": "kumo-abc"}, "/reclaim kumo-abc"},
			{"help", nil, "/help"},
		} {
			before := len(in.All())
			if _, err := e.fake.SlashCommand(alice.ID, dm, tc.name, tc.opts); err != nil {
				t.Fatal(err)
			}
			eventually(t, "/"+tc.name, func() bool { return len(in.All()) > before })
			if got := in.All()[before].Text; got != tc.want {
				t.Errorf("/%s %v became %q, want %q", tc.name, tc.opts, got, tc.want)
			}
			// Answer it, as the core would, so the next command starts clean.
			if _, err := e.a.SendText(context.Background(), in.All()[before].From, bridge.Message{Text: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestRendering(t *testing.T) {
	tests := []struct {
		name string
		m    bridge.Message
		want string
	}{
		{"relay", bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "hi"}, "**Blue Fox**: hi"},
		{"relay markdown", bridge.Message{Kind: bridge.KindRelay, From: "x_y", Text: "@everyone **b** ||s|| `c` > q [l](http://e) <@1> # h -# s ~~t~~ \\"},
			`**x\_y**: \@everyone \*\*b\*\* \|\|s\|\| \` + "`" + `c\` + "`" + ` \> q \[l\](http://e) \<\@1\> \# h \-\# s \~\~t\~\~ \\`},
		{"notice", bridge.Message{Kind: bridge.KindNotice, Text: "Ann joined."}, "🔔 *Ann joined.*"},
		{"combined relay", bridge.Message{Kind: bridge.KindRelay, Lines: []bridge.Line{{From: "Blue Fox", Text: "hi"}, {From: "x_y", Text: "**b** 🔔 *n*"}}},
			"**Blue Fox**: hi\n**x\\_y**: \\*\\*b\\*\\* 🔔 \\*n\\*"},
		{"a forged notice line is quoted under the sender", bridge.Message{Kind: bridge.KindRelay, From: "Calm Otter", Text: "hi\n🔔 *Proud Wolf left.* 1 member."},
			"**Calm Otter**:\n>>> hi\n🔔 \\*Proud Wolf left.\\* 1 member."},
		{"reply with code", bridge.Message{Kind: bridge.KindReply, Text: "Password:", Code: "a*b"}, "Password:\n```\na*b\n```"},
		{"code with a backtick", bridge.Message{Kind: bridge.KindReply, Code: "a`b"}, "a\\`b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(tc.m); got != tc.want {
				t.Errorf("render = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTextLenIsAdditiveAndCountsEscaping(t *testing.T) {
	texts := []string{"", "plain", "**bold** @everyone", "emoji 👍🏽 and 🇫🇷 and 👨‍👩‍👧", "\\\\``||", strings.Repeat("a_b ", 100)}
	for _, s := range texts {
		if got, want := textLen(s), utf8.RuneCountInString(escape(s)); got != want {
			t.Errorf("textLen(%q) = %d, escaped length is %d", s, got, want)
		}
		for i := range s {
			if !utf8.RuneStart(s[i]) {
				continue
			}
			if textLen(s[:i])+textLen(s[i:]) != textLen(s) {
				t.Errorf("textLen not additive for %q split at %d", s, i)
			}
			if escape(s[:i])+escape(s[i:]) != escape(s) {
				t.Errorf("escape not piecewise for %q split at %d", s, i)
			}
		}
	}
	// The core's budget: MaxText - Overhead - len(pseudonym + ": ") must bound the rendered message.
	lim := (&Adapter{}).Limits()
	for _, text := range []string{strings.Repeat("*", 1000), strings.Repeat("*\n", 500)} { // one line; quoted lines
		from := "Zed*"
		rendered := render(bridge.Message{Kind: bridge.KindRelay, From: from, Text: text})
		if got, budget := utf8.RuneCountInString(rendered), lim.Len(from+": "+text)+lim.Overhead; got > budget {
			t.Errorf("rendered relay is %d code points, but Limits account for %d", got, budget)
		}
	}
}

func TestSendErrors(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	ctx := context.Background()
	open := e.fake.AddUser("open")
	closed := e.fake.AddUser("closed")
	e.fake.SetDMsClosed(closed.ID, true)
	addr := func(u discordtest.User) bridge.Addr {
		return bridge.Addr{Platform: "discord", User: u.ID, Chat: e.fake.DMChannel(u.ID)}
	}
	tests := []struct {
		name string
		to   bridge.Addr
		m    bridge.Message
		want error // nil: delivered
	}{
		{"delivered", addr(open), bridge.Message{Text: "hello"}, nil},
		{"DM without chat id is opened", bridge.Addr{Platform: "discord", User: open.ID}, bridge.Message{Text: "hi again"}, nil},
		{"closed DMs (50007)", addr(closed), bridge.Message{Text: "hello"}, bridge.ErrRecipientGone},
		{"unknown channel", bridge.Addr{Platform: "discord", User: open.ID, Chat: "404"}, bridge.Message{Text: "x"}, bridge.ErrRecipientGone},
		{"empty message (400)", addr(open), bridge.Message{}, bridge.ErrRejected},
		{"over 2,000 characters", addr(open), bridge.Message{Text: strings.Repeat("x", 2001)}, bridge.ErrRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.a.SendText(ctx, tc.to, tc.m)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("SendText = %v, want %v", err, tc.want)
			}
		})
	}
	if got := contents(e.fake.Messages(e.fake.DMChannel(open.ID))); !slices.Equal(got, []string{"hello", "hi again"}) {
		t.Errorf("open DM got %q", got)
	}
}

func TestClassify(t *testing.T) {
	a := &Adapter{log: slogDiscard()}
	rest := func(status, code int) error {
		return &discordgo.RESTError{Response: &http.Response{StatusCode: status, Status: http.StatusText(status)},
			Message: &discordgo.APIErrorMessage{Code: code}}
	}
	tests := []struct {
		name      string
		err       error
		gone, rej bool
		limited   bool
	}{
		{"50007", rest(403, 50007), true, false, false},
		{"unknown user", rest(404, 10013), true, false, false},
		{"missing access", rest(403, 50001), false, true, false},
		{"bad request", rest(400, 50035), false, true, false},
		{"unauthorized stays transient", rest(401, 0), false, false, false},
		{"server error is transient", rest(502, 0), false, false, false},
		{"network error is transient", errors.New("connection reset"), false, false, false},
		{"429", &discordgo.RateLimitError{RateLimit: &discordgo.RateLimit{TooManyRequests: &discordgo.TooManyRequests{RetryAfter: 1500e6}}}, false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := a.classify(tc.err)
			var rl *bridge.RateLimitError
			if errors.Is(err, bridge.ErrRecipientGone) != tc.gone || errors.Is(err, bridge.ErrRejected) != tc.rej || errors.As(err, &rl) != tc.limited {
				t.Fatalf("classify(%v) = %v", tc.err, err)
			}
			if tc.limited && rl.RetryAfter != 1500e6 {
				t.Errorf("RetryAfter = %s, want 1.5s", rl.RetryAfter)
			}
		})
	}
}

// A member who types a line that reads like a notice gets it shown as theirs: the fake stores the
// content exactly as Discord would receive it.
func TestForgedNoticeIsQuotedOnTheWire(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	u := e.fake.AddUser("reader")
	to := bridge.Addr{Platform: "discord", User: u.ID, Chat: e.fake.DMChannel(u.ID)}
	for _, m := range []bridge.Message{
		{Kind: bridge.KindRelay, From: "Calm Otter", Text: "hi\n🔔 *Proud Wolf left.* 1 member."},
		{Kind: bridge.KindNotice, Text: "Proud Wolf left. 1 member."},
	} {
		if _, err := e.a.SendText(context.Background(), to, m); err != nil {
			t.Fatal(err)
		}
	}
	got := contents(e.fake.Messages(to.Chat))
	want := []string{
		"**Calm Otter**:\n>>> hi\n🔔 \\*Proud Wolf left.\\* 1 member.", // the forged line: quoted, not italic
		"🔔 *Proud Wolf left. 1 member.*",                              // the real notice: italic, unquoted
	}
	if !slices.Equal(got, want) {
		t.Errorf("DM shows %q, want %q", got, want)
	}
}

func TestInvoiceHasQRAttachment(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	u := e.fake.AddUser("payer")
	to := bridge.Addr{Platform: "discord", User: u.ID, Chat: e.fake.DMChannel(u.ID)}
	png := []byte("\x89PNG\r\n\x1a\nnot really")
	inv := &bridge.Invoice{ID: "h", BOLT11: "lnbcrt100u1pjexample", QR: png}
	_, err := e.a.SendImage(context.Background(), to, bridge.Image{Name: "invoice.png", PNG: png},
		bridge.Message{Kind: bridge.KindInvoice, Text: "⚡ Pay 10,000 sat", Code: inv.BOLT11, Invoice: inv})
	if err != nil {
		t.Fatal(err)
	}
	ms := e.fake.Messages(to.Chat)
	if len(ms) != 1 {
		t.Fatalf("got %d messages", len(ms))
	}
	m := ms[0]
	if len(m.Attachments) != 1 || m.Attachments[0].Filename != "invoice.png" || m.Attachments[0].ContentType != "image/png" || string(m.Attachments[0].Data) != string(png) {
		t.Errorf("attachments = %+v", m.Attachments)
	}
	if want := "⚡ Pay 10,000 sat\n```\nlnbcrt100u1pjexample\n```"; m.Content != want {
		t.Errorf("content = %q, want %q", m.Content, want)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestGatewayDropResumesWithoutLoss(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	in := &bridgetest.Inbox{}
	e.run(t, in)
	alice := e.fake.AddUser("alice")

	e.fake.SendDM(alice.ID, "before")
	eventually(t, "the first message", func() bool { return len(in.All()) == 1 })
	e.fake.DropGateway()
	e.fake.SendDM(alice.ID, "while down") // kept by the session, replayed on RESUME
	e.waitFake(t, "a RESUME", func() bool { return e.fake.Resumes() == 1 && e.fake.Connected() })
	e.fake.SendDM(alice.ID, "after")
	eventually(t, "three messages", func() bool { return len(in.All()) >= 3 })

	var got []string
	for _, m := range in.All() {
		got = append(got, m.Text)
	}
	if want := []string{"before", "while down", "after"}; !slices.Equal(got, want) {
		t.Errorf("inbound = %q, want %q", got, want)
	}
	if n := e.fake.Identifies(); n != 1 {
		t.Errorf("%d IDENTIFYs: the drop should have been resumed, not re-identified", n)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	stop := e.run(t, &bridgetest.Inbox{})
	stop() // fails the test if Run does not return nil promptly
	e.waitFake(t, "the gateway closed", func() bool { return !e.fake.Connected() })
}

func TestUnansweredSlashCommandPlaceholderIsRemoved(t *testing.T) {
	e := newEnv(t, discordtest.Options{})
	e.a.pendingTimeout = 50 * time.Millisecond
	in := &bridgetest.Inbox{}
	e.run(t, in)
	alice := e.fake.AddUser("alice")
	dm := e.fake.DMChannel(alice.ID)
	it, err := e.fake.SlashCommand(alice.ID, dm, "who", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.waitFake(t, "the placeholder answered, then removed", func() bool {
		return e.fake.InteractionResponded(it.ID) && len(e.fake.Messages(dm)) == 0
	})
	// Later answers are plain messages.
	if _, err := e.a.SendText(context.Background(), bridge.Addr{Platform: "discord", User: alice.ID, Chat: dm}, bridge.Message{Text: "late"}); err != nil {
		t.Fatal(err)
	}
	if ms := e.fake.Messages(dm); len(ms) != 1 || ms[0].Interaction != "" || ms[0].Content != "late" {
		t.Errorf("DM = %+v", ms)
	}
}

// The per-DM pacing (a token bucket) never breaks Discord's fixed window of 5 messages per 5 s, here
// shrunk twenty-fold: config keys scaled the same way keep every send under the fake's limits.
func TestDMPacingStaysUnderTheRouteLimit(t *testing.T) {
	fake := discordtest.New(discordtest.Options{RouteLimit: discordtest.Window{N: 5, Per: 250 * time.Millisecond}})
	t.Cleanup(fake.Close)
	a, err := New(Config{Token: fake.Token(), APIURL: fake.URL, Pacing: Pacing{PerDM: 20}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	u := fake.AddUser("ann")
	ctx := context.Background()
	for i := range 25 {
		if _, err := a.SendText(ctx, bridge.Addr{Platform: "discord", User: u.ID}, bridge.Message{Kind: bridge.KindReply, Text: fmt.Sprint(i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n := fake.RateLimited(); n != 0 {
		t.Fatalf("the fake answered 429 %d times to the paced adapter", n)
	}
}

func TestPacingConfig(t *testing.T) {
	tests := []struct {
		p    Pacing
		want string // "" when valid
	}{
		{Pacing{}, ""},
		{Pacing{PerDM: 0.5, PerDMBurst: 2, Global: 45, GlobalBurst: 5}, ""},
		{Pacing{PerDM: -1}, "discord.pacing"},
		{Pacing{GlobalBurst: -3}, "discord.pacing"},
	}
	for _, tc := range tests {
		_, err := New(Config{Token: "t", Pacing: tc.p}, slog.New(slog.DiscardHandler))
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with %+v: %v, want %q", tc.p, err, tc.want)
		}
	}
	// A full bucket plus a second's refill is the most that can go in one second.
	if d := (Pacing{}).orDefault(); d != DefaultPacing() || d.Global+rate.Limit(d.GlobalBurst) > 50 || d.PerDM*5+rate.Limit(d.PerDMBurst) > 5+1 {
		t.Errorf("defaults %+v may pass Discord's limits", d)
	}
}
