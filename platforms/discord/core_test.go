package discord

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// payments is the development backend, remembering the invoices it made so tests can pay them.
type payments struct {
	*lightning.Dev
	mu  sync.Mutex
	ids []string
}

func (p *payments) CreateInvoice(ctx context.Context, req bridge.InvoiceRequest) (bridge.Invoice, error) {
	inv, err := p.Dev.CreateInvoice(ctx, req)
	if err == nil {
		p.mu.Lock()
		p.ids = append(p.ids, inv.ID)
		p.mu.Unlock()
	}
	return inv, err
}

func (p *payments) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ids[len(p.ids)-1]
}

// core is the real core running the Discord adapter (against the fake) and an in-memory platform.
type core struct {
	*env
	b     *bridge.Bridge
	pay   *payments
	other *bridgetest.Platform
}

func startCore(t testing.TB, opts discordtest.Options, aopts ...Option) *core {
	t.Helper()
	other := bridgetest.New("other", bridge.Limits{MaxText: 4096})
	return startCoreOn(t, opts, other, other, aopts...)
}

// startCoreOn is startCore with the other platform given: p, whose fake is other.
func startCoreOn(t testing.TB, opts discordtest.Options, p bridge.Platform, other *bridgetest.Platform, aopts ...Option) *core {
	t.Helper()
	if opts.RouteLimit.N == 0 {
		// Discord's 5 messages per 5 s per DM, shrunk so the tests do not crawl.
		opts.RouteLimit = discordtest.Window{N: 5, Per: 250 * time.Millisecond}
	}
	// Pace each DM like the default does for Discord's window, shrunk the same way.
	aopts = append([]Option{WithDMPacing(rate.Limit(float64(opts.RouteLimit.N)/opts.RouteLimit.Per.Seconds()/5), 1)}, aopts...)
	e := newEnv(t, opts, aopts...)
	cfg := bridge.DefaultConfig()
	cfg.FloodRate = 0
	cfg.Retry = bridge.RetryPolicy{Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRateLimitWait: time.Minute}
	// Stopping wipes every room; at Discord's 5 deletions a second a big room's wipe outlasts the
	// test's wait for Run, so the grace is bounded below it (what is left is counted, not waited for).
	cfg.ShutdownGrace = wait / 2
	c := &core{env: e, pay: &payments{Dev: lightning.NewDev(e.log)}, other: other}
	b, err := bridge.New(cfg, c.pay, e.log, e.a, p)
	if err != nil {
		t.Fatal(err)
	}
	c.b = b
	run := bridgetest.Background(t, "bridge", b.Run)
	e.waitReady(t, run)
	return c
}

// lastDM waits for a message in the user's DM containing substr (after the first `after` messages)
// and returns it.
func (c *core) dmWith(t testing.TB, user discordtest.User, after int, substr string) discordtest.Message {
	t.Helper()
	ch := c.fake.DMChannel(user.ID)
	var found discordtest.Message
	c.waitFake(t, fmt.Sprintf("%s's DM to get %q", user.Username, substr), func() bool {
		ms := c.fake.Messages(ch)
		for _, m := range ms[min(after, len(ms)):] {
			if !m.Deferred && strings.Contains(m.Content, substr) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func (c *core) dmCount(user discordtest.User) int {
	return len(c.fake.Messages(c.fake.DMChannel(user.ID)))
}

// codeOf is the text of the message's code block.
func codeOf(t testing.TB, m discordtest.Message) string {
	t.Helper()
	_, rest, ok := strings.Cut(m.Content, "```\n")
	code, _, ok2 := strings.Cut(rest, "\n```")
	if !ok || !ok2 {
		t.Fatalf("no code block in %q", m.Content)
	}
	return code
}

// openRoom has the Discord user buy a room with a DM text command, pays it, and returns the password.
func (c *core) openRoom(t testing.TB, u discordtest.User) string {
	t.Helper()
	n := c.dmCount(u)
	c.fake.SendDM(u.ID, "/newroom")
	inv := c.dmWith(t, u, n, "Pay")
	if len(inv.Attachments) != 1 || inv.Attachments[0].Filename != "invoice.png" || !strings.HasPrefix(string(inv.Attachments[0].Data), "\x89PNG\r\n\x1a\n") {
		t.Fatalf("the invoice has no QR PNG attached: %+v", inv.Attachments)
	}
	if !strings.HasPrefix(codeOf(t, inv), "lnbcrt") {
		t.Fatalf("the invoice's code block is not the BOLT11: %q", inv.Content)
	}
	if err := c.pay.Pay(context.Background(), c.pay.last()); err != nil {
		t.Fatal(err)
	}
	return codeOf(t, c.dmWith(t, u, n, "room is open"))
}

// inert reports whether s, as Discord markdown, has no unescaped markup or mention character.
func inert(s string) bool {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++ // the next character is shown as itself
		case strings.IndexByte(markdownSpecial, s[i]) >= 0:
			return false
		}
	}
	return true
}

func TestCoreCommandsSlashAndRelay(t *testing.T) {
	c := startCore(t, discordtest.Options{})
	alice, bob := c.fake.AddUser("alice"), c.fake.AddUser("bob")
	_, guildChannel := c.fake.AddGuild()
	carol := c.other.User("carol")

	password := c.openRoom(t, alice)

	// Bob joins with the slash command in a server: a private pointer there, the rest in his DM.
	if _, err := c.fake.SlashCommand(bob.ID, guildChannel, "join", map[string]string{"password": password}); err != nil {
		t.Fatal(err)
	}
	c.dmWith(t, bob, 0, "You joined the room")
	c.dmWith(t, alice, 0, "joined. 2 members.")
	for _, m := range c.fake.Messages(guildChannel) {
		if !m.Ephemeral() {
			t.Errorf("something of the room appeared in the server channel: %q", m.Content)
		}
	}

	// A slash command in the DM is answered in the interaction's response.
	n := c.dmCount(alice)
	it, err := c.fake.SlashCommand(alice.ID, c.fake.DMChannel(alice.ID), "who", nil)
	if err != nil {
		t.Fatal(err)
	}
	if who := c.dmWith(t, alice, n, "2 members in this room"); who.Interaction != it.ID {
		t.Errorf("the /who answer was not the interaction's response: %+v", who)
	}

	// Markdown and mentions from another platform arrive inert.
	c.other.Say(t, carol, password)
	c.dmWith(t, alice, 0, "3 members")
	nb := c.dmCount(bob)
	evil := "@everyone @here <@" + bob.ID + "> <@&42> **bold** __u__ ~~s~~ ||spoiler|| `code` ```block``` > quote\n# Header\n-# small\n[click](https://evil.example) \\"
	c.other.Say(t, carol, evil)
	got := c.dmWith(t, bob, nb, "everyone")
	// Several lines: quoted to the end under the bold pseudonym.
	nick, text, ok := strings.Cut(got.Content, "**:\n>>> ")
	if !ok || !strings.HasPrefix(nick, "**") || !inert(strings.TrimPrefix(nick, "**")) {
		t.Fatalf("relay not rendered as **pseudonym**:\\n>>> text: %q", got.Content)
	}
	if !inert(text) || text != escape(evil) {
		t.Errorf("relayed text not inert: %q", text)
	}
	if got.AllowedMentions == nil || got.AllowedMentions.Parse == nil || len(got.AllowedMentions.Parse) != 0 {
		t.Errorf("allowed_mentions = %+v, want parse: []", got.AllowedMentions)
	}
	if got.Flags&discordtest.FlagSuppressEmbeds == 0 {
		t.Errorf("relayed links may unfurl: flags %#x", got.Flags)
	}

	// A DM text from Alice reaches the others; a bare file reaches bob, and carol (whose platform
	// shows no media) is told what she missed.
	c.fake.SendDM(alice.ID, "hello from discord")
	c.other.WaitText(t, carol.Chat, "hello from discord")
	c.dmWith(t, bob, nb, "hello from discord")
	c.fake.SendDM(alice.ID, "", "photo.jpg")
	c.other.WaitText(t, carol.Chat, "sent a file, which other can't show here")
	c.waitFake(t, "the file in bob's DM", func() bool {
		ms := c.fake.Messages(c.fake.DMChannel(bob.ID))
		return len(ms) > 0 && len(ms[len(ms)-1].Attachments) == 1 && ms[len(ms)-1].Attachments[0].Filename == "file.jpg"
	})

	logs := c.logs.String()
	for _, secret := range []string{password, "hello from discord", "spoiler"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

func TestCoreLongMessageInTwoParts(t *testing.T) {
	c := startCore(t, discordtest.Options{})
	alice := c.fake.AddUser("alice")
	carol := c.other.User("carol")
	password := c.openRoom(t, alice)
	c.other.Say(t, carol, password)
	c.dmWith(t, alice, 0, "2 members")

	n := c.dmCount(alice)
	var words []string
	for i := 0; len(strings.Join(words, " ")) < 3000; i++ {
		words = append(words, fmt.Sprintf("w%03d", i))
	}
	long := strings.Join(words, " ")[:3000]
	c.other.Say(t, carol, long)
	c.waitFake(t, "two parts", func() bool { return c.dmCount(alice) >= n+2 })
	parts := c.fake.Messages(c.fake.DMChannel(alice.ID))[n:]
	if len(parts) != 2 {
		t.Fatalf("got %d messages, want 2", len(parts))
	}
	var joined string
	for _, p := range parts {
		if utf8.RuneCountInString(p.Content) > 2000 {
			t.Errorf("a part has %d characters", utf8.RuneCountInString(p.Content))
		}
		_, text, ok := strings.Cut(p.Content, "**: ")
		if !ok {
			t.Fatalf("part without its pseudonym: %q", p.Content[:40])
		}
		joined += text
	}
	if joined != long {
		t.Errorf("the parts do not give the text back in order")
	}
}

func TestCoreBurstThrough429s(t *testing.T) {
	// Discord's real limits, shrunk: a global limit the adapter is not told about (pacing off), so it
	// meets 429s, and per-channel buckets it learns from the headers.
	c := startCore(t, discordtest.Options{
		GlobalLimit: discordtest.Window{N: 10, Per: 100 * time.Millisecond},
		RouteLimit:  discordtest.Window{N: 20, Per: 100 * time.Millisecond},
	}, WithPacing(rate.Inf, 1), WithDMPacing(rate.Inf, 1))
	alice, bob := c.fake.AddUser("alice"), c.fake.AddUser("bob")
	carol := c.other.User("carol")
	password := c.openRoom(t, alice)
	c.fake.SendDM(bob.ID, password)
	c.dmWith(t, bob, 0, "You joined")
	c.other.Say(t, carol, password)
	c.dmWith(t, bob, 0, "3 members")

	na, nb := c.dmCount(alice), c.dmCount(bob)
	const burst = 200
	var want []string
	for i := range burst {
		text := fmt.Sprintf("message %03d", i)
		want = append(want, text)
		c.other.Say(t, carol, text)
		if i%32 == 31 { // the core takes a bounded inbox per sender: let it catch up
			eventually(t, "the core to take the burst", func() bool { return c.b.Stats().Relayed >= uint64(i+1) })
		}
	}
	for _, u := range []struct {
		user discordtest.User
		from int
	}{{alice, na}, {bob, nb}} {
		c.waitFake(t, "the whole burst for "+u.user.Username, func() bool {
			ms := c.fake.Messages(c.fake.DMChannel(u.user.ID))
			return len(ms) > 0 && strings.HasSuffix(ms[len(ms)-1].Content, want[burst-1])
		})
		var got []string
		for _, m := range c.fake.Messages(c.fake.DMChannel(u.user.ID))[u.from:] {
			// Under backlog the core combines messages into one send, one line each.
			for _, line := range strings.Split(m.Content, "\n") {
				if _, text, ok := strings.Cut(line, "**: "); ok && strings.HasPrefix(line, "**") {
					got = append(got, text) // relayed text (a late join notice may sit among them)
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s got the burst incomplete or out of order (%d messages)", u.user.Username, len(got))
		}
	}
	if c.fake.RateLimited() == 0 || c.a.RateLimited() == 0 {
		t.Errorf("no 429 happened (fake %d, adapter %d): the test did not test rate limits", c.fake.RateLimited(), c.a.RateLimited())
	}
	t.Logf("429 answers: %d for %d messages", c.fake.RateLimited(), 2*burst)
}

func TestCoreClosedDMsRemoveMember(t *testing.T) {
	c := startCore(t, discordtest.Options{})
	alice, bob := c.fake.AddUser("alice"), c.fake.AddUser("bob")
	carol := c.other.User("carol")
	password := c.openRoom(t, alice)
	c.fake.SendDM(bob.ID, "/join "+password)
	c.dmWith(t, bob, 0, "You joined")
	c.other.Say(t, carol, password)
	c.dmWith(t, alice, 0, "3 members")

	c.fake.SetDMsClosed(bob.ID, true)
	c.other.Say(t, carol, "are you there?")
	c.dmWith(t, alice, 0, "can no longer be reached")
	c.other.WaitText(t, carol.Chat, "can no longer be reached")
	if s := c.b.Stats(); s.Members != 2 {
		t.Errorf("%d members after bob became unreachable, want 2", s.Members)
	}
}

func TestCoreGatewayDropMidConversation(t *testing.T) {
	c := startCore(t, discordtest.Options{})
	alice := c.fake.AddUser("alice")
	carol := c.other.User("carol")
	password := c.openRoom(t, alice)
	c.other.Say(t, carol, password)
	c.dmWith(t, alice, 0, "2 members")

	c.fake.SendDM(alice.ID, "one")
	c.other.WaitText(t, carol.Chat, "one")
	c.fake.DropGateway()
	c.fake.SendDM(alice.ID, "two")
	c.waitFake(t, "a RESUME", func() bool { return c.fake.Resumes() == 1 && c.fake.Connected() })
	c.fake.SendDM(alice.ID, "three")
	c.other.Say(t, carol, "still here")
	c.other.WaitText(t, carol.Chat, "three")
	c.dmWith(t, alice, 0, "still here")

	var got []string
	for _, m := range bridgetest.Relayed(c.other.Messages(carol.Chat)) {
		got = append(got, m.Text)
	}
	if want := []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Errorf("carol got %q, want %q", got, want)
	}
}
