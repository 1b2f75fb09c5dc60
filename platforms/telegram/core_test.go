package telegram_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// world is the core running on the telegram adapter, which talks to the fake Bot API.
type world struct {
	s    *telegramtest.Server
	a    *telegram.Adapter
	b    *bridge.Bridge
	dev  *lightning.Dev
	ctx  context.Context
	stop func()
}

func startWorld(t testing.TB, lim telegramtest.Limits, mutate func(*bridge.Config)) *world {
	t.Helper()
	return startWorldWith(t, lim, mutate)
}

// startWorldWith runs the core on the telegram adapter and the other platforms given.
func startWorldWith(t testing.TB, lim telegramtest.Limits, mutate func(*bridge.Config), others ...bridge.Platform) *world {
	t.Helper()
	s := telegramtest.New(t, telegramtest.WithLimits(lim))
	a := newAdapter(t, s, telegram.WithPacing(pacingFor(lim)))
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	cfg.FloodRate = 0
	cfg.Retry = bridge.RetryPolicy{Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRateLimitWait: time.Minute}
	if mutate != nil {
		mutate(&cfg)
	}
	dev := lightning.NewDev(testLogger(t))
	b, err := bridge.New(cfg, dev, testLogger(t), append([]bridge.Platform{a}, others...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	w := &world{s: s, a: a, b: b, dev: dev, ctx: ctx}
	w.stop = bridgetest.Run(t, b)
	return w
}

// say has u send text to the bot in their private chat.
func (w *world) say(u telegramtest.User, text string) {
	w.s.Inject(telegramtest.Incoming{From: u, Text: text})
}

// waitText waits for a message to u's chat, after the first `after` ones, whose text contains want.
func (w *world) waitText(t testing.TB, u telegramtest.User, after int, want string) telegramtest.Sent {
	t.Helper()
	for n := after + 1; ; n++ {
		sent, err := w.s.WaitSent(w.ctx, u.ID, n)
		if err != nil {
			t.Fatalf("waiting for %q in %s's chat: %v; got %s", want, u.FirstName, err, texts(sent[min(after, len(sent)):]))
		}
		if strings.Contains(sent[n-1].Text, want) {
			return sent[n-1]
		}
	}
}

func texts(sent []telegramtest.Sent) string {
	var q []string
	for _, s := range sent {
		q = append(q, strconv.Quote(s.Text))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// code returns the text of the first monospace entity of a message: a password, a BOLT11.
func code(t testing.TB, s telegramtest.Sent) string {
	t.Helper()
	u := utf16.Encode([]rune(s.Text))
	for _, e := range s.Entities {
		if e.Type == "code" {
			return string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
		}
	}
	t.Fatalf("no code entity in %q", s.Text)
	return ""
}

// openRoom has creator open a free room and the others join it; it returns the password.
func (w *world) openRoom(t testing.TB, creator telegramtest.User, others ...telegramtest.User) string {
	t.Helper()
	before := len(w.s.Sent(creator.ID))
	w.say(creator, "/newroom")
	pw := code(t, w.waitText(t, creator, before, "Your room is open"))
	for _, u := range others {
		n := len(w.s.Sent(u.ID))
		w.say(u, "/join "+pw)
		w.waitText(t, u, n, "You joined the room")
	}
	return pw
}

func (w *world) nick(t testing.TB, u telegramtest.User) string {
	t.Helper()
	_, m, err := w.b.Store().RoomOf(addr(u).Key())
	if err != nil {
		t.Fatalf("%s is in no room: %v", u.FirstName, err)
	}
	return m.Nick
}

func unlimited() telegramtest.Limits { return telegramtest.Limits{} }

func TestCoreAnswersADMCommand(t *testing.T) {
	w := startWorld(t, fakeLimits(), nil)
	w.say(alice, "/help")
	got := w.waitText(t, alice, 0, "/newroom")
	if got.Method != "sendMessage" || got.ParseMode != "HTML" {
		t.Fatalf("help arrived as %+v", got)
	}
}

func TestCoreInvoicePhoto(t *testing.T) {
	w := startWorld(t, fakeLimits(), func(c *bridge.Config) { c.PriceSat = 2100 })
	w.say(alice, "/newroom")
	sent, err := w.s.WaitSent(w.ctx, alice.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := sent[0]
	if p.Method != "sendPhoto" {
		t.Fatalf("the invoice arrived as %+v", p)
	}
	bolt := code(t, p)
	if !strings.HasPrefix(bolt, "lnbcrt") || strings.Count(p.Text, bolt) != 1 {
		t.Fatalf("caption %q does not hold the BOLT11 once", p.Text)
	}
	if !strings.Contains(p.Text, "2,100 sat") || !strings.Contains(p.Text, "expires in") {
		t.Fatalf("caption %q lacks the amount or the expiry", p.Text)
	}
	// The photo is the QR code of exactly that invoice.
	want, err := lightning.QRCode("lightning:" + bolt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Photo, want) {
		t.Fatalf("the photo (%d bytes) is not the QR code of the BOLT11 in the caption", len(p.Photo))
	}
}

func TestCoreRelayKeepsMarkupCharacters(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	w.openRoom(t, alice, bob)
	nick := w.nick(t, alice)
	text := "* _ < [ & ` <b>not bold</b> [link](http://x) &amp; _a_ *b*"
	n := len(w.s.Sent(bob.ID))
	w.say(alice, text)
	got := w.waitText(t, bob, n, "not bold")
	if want := nick + ": " + text; got.Text != want {
		t.Fatalf("bob sees %q, want %q", got.Text, want)
	}
	if len(got.Entities) != 1 || got.Entities[0] != (telegramtest.Entity{Type: "bold", Offset: 0, Length: len(utf16.Encode([]rune(nick)))}) {
		t.Fatalf("entities %+v: only the pseudonym may be bold", got.Entities)
	}
}

func TestCoreSplitsLongTextInOrder(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	w.openRoom(t, alice, bob)
	nick := w.nick(t, alice)
	var words []string
	for i := 0; len(strings.Join(words, " ")) < 5000; i++ {
		words = append(words, "w"+strconv.Itoa(i))
	}
	text := strings.Join(words, " ")[:5000]
	n := len(w.s.Sent(bob.ID))
	w.say(alice, text)
	sent, err := w.s.WaitSent(w.ctx, bob.ID, n+2)
	if err != nil {
		t.Fatal(err)
	}
	parts := sent[n:]
	if len(parts) != 2 {
		t.Fatalf("bob received %d messages, want 2", len(parts))
	}
	var joined string
	for i, p := range parts {
		prefix, suffix := nick+": ", " ("+strconv.Itoa(i+1)+"/2)"
		if !strings.HasPrefix(p.Text, prefix) || !strings.HasSuffix(p.Text, suffix) {
			t.Fatalf("part %d = %q...%q", i+1, p.Text[:20], p.Text[len(p.Text)-20:])
		}
		joined += strings.TrimSuffix(strings.TrimPrefix(p.Text, prefix), suffix)
	}
	if joined != text {
		t.Fatalf("the parts do not join back into the text")
	}
}

// senders are a busy room's members; the core takes up to 64 pending messages from one person, so a
// burst of 200 comes from four of them.
var senders = []telegramtest.User{
	alice, carol, {ID: 1004, FirstName: "Dave"}, {ID: 1005, FirstName: "Erin"},
}

func TestCoreBurstArrivesInOrderUnderLimits(t *testing.T) {
	lim := fakeLimits() // 50/s per chat, 100/s overall, enforced with 429s
	w := startWorld(t, lim, nil)
	w.openRoom(t, bob, senders...)
	// bob's chat is quiet once he has heard that the last sender joined.
	w.waitText(t, bob, 0, strconv.Itoa(len(senders)+1)+" members")
	n := len(w.s.Sent(bob.ID))
	const burst = 200
	per := burst / len(senders)
	for i := range per {
		for _, u := range senders {
			w.say(u, u.FirstName+" "+strconv.Itoa(i))
		}
	}
	// A 429 in the middle of the burst, as Telegram sends when it is busy: the core must wait
	// retry_after and resend that message, in its place.
	// Under backlog the core combines messages into one send, one line each: count lines.
	relayed := func(sent []telegramtest.Sent) []string {
		var out []string
		for _, m := range sent[min(n, len(sent)):] {
			out = append(out, strings.Split(m.Text, "\n")...)
		}
		return out
	}
	if _, err := w.s.WaitFor(w.ctx, bob.ID, func(s []telegramtest.Sent) bool { return len(relayed(s)) >= burst/2 }); err != nil {
		t.Fatal(err)
	}
	w.s.FailNext("sendMessage", 1, 429, "Too Many Requests: retry after 1", 1)
	sent, err := w.s.WaitFor(w.ctx, bob.ID, func(s []telegramtest.Sent) bool { return len(relayed(s)) >= burst })
	if err != nil {
		t.Fatalf("bob received %d of %d messages: %v", len(relayed(sent)), burst, err)
	}
	if got := len(relayed(sent)); got != burst {
		t.Fatalf("bob received %d messages, want %d", got, burst)
	}
	next := map[string]int{} // pseudonym -> the number their next message must carry
	nicks := map[string]string{}
	for _, u := range senders {
		nicks[w.nick(t, u)] = u.FirstName
	}
	for _, line := range relayed(sent) {
		nick, text, _ := strings.Cut(line, ": ")
		name, ok := nicks[nick]
		if want := name + " " + strconv.Itoa(next[nick]); !ok || text != want {
			t.Fatalf("bob got %q, want %q from %s next", line, want, nick)
		}
		next[nick]++
	}
	if st := w.b.Stats(); st.DeliveriesFailed != 0 {
		t.Fatalf("%d deliveries failed", st.DeliveriesFailed)
	}
	if w.s.Stats().Calls["sendMessage"] < len(sent)+1 {
		t.Fatal("the injected 429 was never answered")
	}
	t.Logf("the fake's limits answered %d 429s", w.s.Stats().RateLimited)
}

func TestCoreRemovesAUserWhoBlockedTheBot(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	w.openRoom(t, alice, bob, carol)
	bobNick := w.nick(t, bob)
	w.s.Block(bob.ID)
	na, nc := len(w.s.Sent(alice.ID)), len(w.s.Sent(carol.ID))
	w.say(alice, "are you there?")
	w.waitText(t, carol, nc, "are you there?")
	for _, u := range []telegramtest.User{alice, carol} {
		got := w.waitText(t, u, map[int64]int{alice.ID: na, carol.ID: nc}[u.ID], "left")
		if !strings.Contains(got.Text, bobNick) || !strings.HasPrefix(got.Text, bridge.NoticeMark) {
			t.Fatalf("%s was told %q", u.FirstName, got.Text)
		}
	}
	if _, _, err := w.b.Store().RoomOf(addr(bob).Key()); err == nil {
		t.Fatal("bob is still in the room")
	}
}

func TestCoreRelaysNothingFromGroups(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	pw := w.openRoom(t, alice, bob)
	group := telegramtest.Chat{ID: -100777, Type: "group", Title: "friends"}
	n := len(w.s.Sent(bob.ID))
	w.s.Inject(telegramtest.Incoming{From: alice, Chat: group, Text: "from the group"})
	w.s.Inject(telegramtest.Incoming{From: carol, Chat: group, Text: pw}) // a password in a group joins nothing
	// Updates are handled in order: once this DM arrives, the group messages were dealt with.
	w.say(alice, "from the DM")
	w.waitText(t, bob, n, "from the DM")
	for _, m := range w.s.Sent(bob.ID)[n:] {
		if strings.Contains(m.Text, "from the group") {
			t.Fatalf("a group message was relayed: %q", m.Text)
		}
	}
	if _, _, err := w.b.Store().RoomOf(addr(carol).Key()); err == nil {
		t.Fatal("a password sent in a group joined the room")
	}
	// The adapter answers groups off its update loop (pacing must not hold up DMs): wait for it.
	g, err := w.s.WaitSent(w.ctx, group.ID, 1)
	if err != nil || len(g) != 1 || !strings.Contains(g[0].Text, "t.me/kumo_test_bot") {
		t.Fatalf("the group received %s (%v), want one pointer to the DM", texts(g), err)
	}
}
