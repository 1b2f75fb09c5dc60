package bridge_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
)

// wipeHarness is a core with four fake messengers: "tg" deletes both sides in batches of 100 (like
// Telegram private chats), "dc" only its own, one at a time (like Discord DMs), "mx" both sides one
// at a time (like Matrix with the power to redact), and "pl" cannot delete at all.
type wipeHarness struct {
	harness
	mx *bridgetest.Deleting
	pl *bridgetest.Platform
	// tgd and dcd are tg and dc as deleting platforms.
	tgd, dcd *bridgetest.Deleting

	mu   sync.Mutex
	said map[bridge.Addr]int // messages each person sent
}

func startWipe(t *testing.T, mutate func(*bridge.Config)) *wipeHarness {
	t.Helper()
	cfg := testConfig(mutate)
	logs, log := debugLog()
	h := &wipeHarness{
		tgd:  bridgetest.NewDeleting("tg", bridge.Limits{MaxText: 4096}, 100, true),
		dcd:  bridgetest.NewDeleting("dc", bridge.Limits{MaxText: 2000}, 1, false),
		mx:   bridgetest.NewDeleting("mx", bridge.Limits{MaxText: 30000}, 1, true),
		pl:   bridgetest.New("pl", bridge.Limits{MaxText: 4096}),
		said: make(map[bridge.Addr]int),
	}
	h.dev, h.logs = lightning.NewDev(log), logs
	h.tg, h.dc = h.tgd.Platform, h.dcd.Platform
	h.run(t, cfg, log, h.tgd, h.dcd, h.mx, h.pl)
	return h
}

func (h *wipeHarness) say(t *testing.T, p *bridgetest.Platform, from bridge.Addr, text string) {
	t.Helper()
	h.mu.Lock()
	h.said[from]++
	h.mu.Unlock()
	p.Say(t, from, text)
}

var erasedRe = regexp.MustCompile(`(\d+) messages? (was|were) erased`)

// wipedMember is one member's chat to check after their wipe.
type wipedMember struct {
	p      *bridgetest.Platform
	who    bridge.Addr
	theirs bool // the platform deletes the person's own messages
	delete bool // the platform deletes at all
	notice string
}

// checkWiped waits for the member's final notice and checks the chat shows nothing else of the room
// (but the person's own messages where the platform cannot delete them), and that the notice counts
// every message it erased.
func (h *wipeHarness) checkWiped(t *testing.T, w wipedMember) {
	t.Helper()
	isFinal := func(s bridgetest.Shown) bool {
		return !s.Own && s.Msg.Kind == bridge.KindNotice && strings.Contains(s.Msg.Text, w.notice)
	}
	shown := w.p.WaitChat(t, w.who.Chat, wait, "only the final notice", func(ss []bridgetest.Shown) bool {
		if !w.delete {
			return len(ss) > 0 && isFinal(ss[len(ss)-1])
		}
		finals, others := 0, 0
		for _, s := range ss {
			switch {
			case isFinal(s):
				finals++
			case s.Own && !w.theirs:
			default:
				others++
			}
		}
		return finals == 1 && others == 0
	})
	final := shown[len(shown)-1]
	if !isFinal(final) {
		t.Fatalf("%s: the final notice is not the last thing shown: %v", w.who.User, final)
	}
	if !w.delete {
		if !strings.Contains(final.Msg.Text, "does not let kumo erase") {
			t.Fatalf("%s: a platform without deletes is not told so: %q", w.who.User, final.Msg.Text)
		}
		return
	}
	h.mu.Lock()
	own := h.said[w.who]
	h.mu.Unlock()
	want := len(w.p.Messages(w.who.Chat)) - 1 // everything kumo sent but the final notice
	if w.theirs {
		want += own
	} else {
		if !strings.Contains(final.Msg.Text, "Your own messages remain") {
			t.Fatalf("%s: not told their own messages remain: %q", w.who.User, final.Msg.Text)
		}
		if n := len(shown) - 1; n != own {
			t.Fatalf("%s: %d own messages remain, want all %d", w.who.User, n, own)
		}
	}
	m := erasedRe.FindStringSubmatch(final.Msg.Text)
	if m == nil {
		t.Fatalf("%s: final notice without a count: %q", w.who.User, final.Msg.Text)
	}
	if n, _ := strconv.Atoi(m[1]); n != want {
		t.Fatalf("%s: final notice says %d erased, want %d: %q", w.who.User, n, want, final.Msg.Text)
	}
}

// TestWipeErasesTheRoom runs a paid room with members on four kinds of platform, messages from all of
// them, then ends it each way a room ends; afterwards every chat shows the final notice alone (plus,
// where the bot may not delete them, the person's own messages).
func TestWipeErasesTheRoom(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		end      func(t *testing.T, h *wipeHarness, alice bridge.Addr)
		notice   string
	}{
		{"destroy", 0, func(t *testing.T, h *wipeHarness, alice bridge.Addr) { h.say(t, h.tg, alice, "/destroy") }, "The creator destroyed this room"},
		{"shutdown", 0, func(t *testing.T, h *wipeHarness, _ bridge.Addr) { h.stop() }, "kumo is shutting down"},
		{"expiry", 6 * time.Second, func(*testing.T, *wipeHarness, bridge.Addr) {}, "This room has self-destructed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startWipe(t, func(c *bridge.Config) {
				if tc.lifetime > 0 {
					c.Rooms.Lifetime = tc.lifetime
				}
			})
			members := h.fillRoom(t)
			tc.end(t, h, members[0].who)
			for _, w := range members {
				w.notice = tc.notice
				h.checkWiped(t, w)
			}
			if s := h.b.Stats(); s.EraseFailed != 0 || s.RefsDropped != 0 {
				t.Fatalf("stats after the wipe: %+v", s)
			}
			if refs, _ := h.b.Store().RefsLeft(); refs != 0 {
				t.Fatalf("%d refs outlive the wipe", refs)
			}
		})
	}
}

// fillRoom has alice (tg) buy a room, bob (dc), carol (mx) and dave (pl) join it, and everyone talk.
func (h *wipeHarness) fillRoom(t *testing.T) []wipedMember {
	t.Helper()
	alice, bob, carol, dave := h.tg.User("alice"), h.dc.User("bob"), h.mx.User("carol"), h.pl.User("dave")
	h.mu.Lock()
	h.said[alice]++ // the /newroom
	h.mu.Unlock()
	pw := h.openRoom(t, h.tg, alice, "")
	h.say(t, h.dc, bob, pw)
	h.dc.WaitText(t, bob.Chat, "You joined")
	h.say(t, h.mx.Platform, carol, "/join "+pw)
	h.mx.WaitText(t, carol.Chat, "You joined")
	h.pl.Say(t, dave, pw)
	h.pl.WaitText(t, dave.Chat, "You joined")
	for _, c := range []struct {
		p    *bridgetest.Platform
		who  bridge.Addr
		note string
	}{
		{h.dc, bob, "this messenger does not let it erase yours"},
		{h.pl, dave, "This messenger does not let kumo erase messages"},
	} {
		if j := c.p.WaitText(t, c.who.Chat, "You joined"); !strings.Contains(j.Text, c.note) {
			t.Fatalf("%s is not told on joining what the wipe cannot erase: %q", c.who.User, j.Text)
		}
	}
	if j := h.mx.WaitText(t, carol.Chat, "You joined"); strings.Contains(j.Text, "erase") {
		t.Fatalf("carol, whose messages are all erased, is told otherwise: %q", j.Text)
	}
	ms := []wipedMember{
		{p: h.tg, who: alice, theirs: true, delete: true},
		{p: h.dc, who: bob, delete: true},
		{p: h.mx.Platform, who: carol, theirs: true, delete: true},
		{p: h.pl, who: dave},
	}
	for i := range 3 {
		for _, m := range ms {
			h.say(t, m.p, m.who, fmt.Sprintf("%s says %d", m.who.User, i))
		}
	}
	h.mu.Lock()
	h.said[carol]++ // a photo: not relayed, but erased with the room
	h.mu.Unlock()
	h.mx.SayNonText(t, carol)
	h.mx.WaitText(t, carol.Chat, "That cannot be relayed")
	h.say(t, h.tg, alice, "/who")
	for _, m := range ms {
		m.p.WaitFor(t, m.who.Chat, wait, "everyone's messages", func(got []bridge.Message) bool { return len(relays(got)) == 9 })
	}
	h.tg.WaitText(t, alice.Chat, "4 members in this room")
	return ms
}

// A member who leaves has their own chat wiped at once; the room goes on without them and nothing
// more of it reaches them.
func TestLeaveWipesTheLeaversChat(t *testing.T) {
	h := startWipe(t, nil)
	ms := h.fillRoom(t)
	for _, w := range ms[1:3] { // bob (dc) and carol (mx)
		h.say(t, w.p, w.who, "/leave")
		w.notice = "You left the room"
		h.checkWiped(t, w)
	}
	alice := ms[0]
	h.say(t, h.tg, alice.who, "still here")
	ms[3].p.WaitFor(t, ms[3].who.Chat, wait, "alice's last message", func(got []bridge.Message) bool { return len(relays(got)) == 10 })
	if got := relays(ms[1].p.Messages(ms[1].who.Chat)); len(got) != 9 {
		t.Fatalf("bob got %d relays, some after he left", len(got))
	}
	// alice's chat still shows the room.
	if n := len(h.tg.Chat(alice.who.Chat)); n < 10 {
		t.Fatalf("the creator's chat was wiped by someone else's leaving: %d messages", n)
	}
}

// A storm of 429s during the wipe loses no deletion, and the final notice still comes after it.
func TestWipeSurvivesRateLimitStorm(t *testing.T) {
	h := startWipe(t, nil)
	ms := h.fillRoom(t)
	var mu sync.Mutex
	calls := 0
	limited := func(bridge.Addr, []bridge.MessageID) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%4 != 0 { // three calls in four are refused
			return &bridge.RateLimitError{RetryAfter: time.Millisecond}
		}
		return nil
	}
	h.tgd.SetDeleteFailure(limited)
	h.dcd.SetDeleteFailure(limited)
	h.mx.SetDeleteFailure(limited)
	h.say(t, h.tg, ms[0].who, "/destroy")
	for _, w := range ms {
		w.notice = "The creator destroyed this room"
		h.checkWiped(t, w)
	}
	if s := h.b.Stats(); s.EraseFailed != 0 {
		t.Fatalf("%d deletions lost to 429s", s.EraseFailed)
	}
}

// An invoice left unpaid is a trace too: when it expires it is erased with the /newroom that asked
// for it.
func TestExpiredInvoiceIsWiped(t *testing.T) {
	h := startWipe(t, func(c *bridge.Config) { c.InvoiceExpiry = time.Second })
	alice := h.tg.User("alice")
	h.say(t, h.tg, alice, "/newroom purple elephants dance at noon")
	waitInvoice(t, h.tg, alice.Chat)
	h.tg.WaitChat(t, alice.Chat, wait, "only the expiry reply", func(ss []bridgetest.Shown) bool {
		return len(ss) == 1 && strings.Contains(ss[0].Msg.Text, "Your invoice expired")
	})
}

// A room of 5 members who each send 1,000 messages is wiped entirely: 4,000 relays and 1,000 own
// messages in each chat.
func TestWipeBigRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 messages")
	}
	h := startWipe(t, func(c *bridge.Config) { c.PriceSat = 0 })
	const n, each = 5, 1000
	users := make([]bridge.Addr, n)
	for i := range users {
		users[i] = h.tg.User(fmt.Sprint("u", i))
	}
	h.say(t, h.tg, users[0], "/newroom")
	pw := h.tg.WaitText(t, users[0].Chat, "Your room is open").Code
	for _, u := range users[1:] {
		h.say(t, h.tg, u, pw)
		h.tg.WaitText(t, u.Chat, "You joined")
	}
	for i := range each {
		for _, u := range users {
			h.say(t, h.tg, u, fmt.Sprint("m", i))
		}
		if i%50 == 49 { // each sender's queue holds 64: let the core catch up
			for _, u := range users {
				h.tg.WaitFor(t, u.Chat, time.Minute, "the relays so far", func(ms []bridge.Message) bool { return len(relays(ms)) == (n-1)*(i+1) })
			}
		}
	}
	for _, u := range users {
		h.tg.WaitFor(t, u.Chat, time.Minute, "every relay", func(ms []bridge.Message) bool { return len(relays(ms)) == (n-1)*each })
	}
	h.say(t, h.tg, users[0], "/destroy")
	for _, u := range users {
		h.checkWiped(t, wipedMember{p: h.tg, who: u, theirs: true, delete: true, notice: "The creator destroyed this room"})
	}
}

// BenchmarkWipe measures the core's own cost of wiping the room of TestWipeBigRoom (5 members ×
// 1,000 messages: 5,000 ids in each chat) on a platform that deletes instantly in batches of 100.
// Run: go test -tags goolm -run '^$' -bench 'Wipe$' -benchtime 3x ./bridge/
func BenchmarkWipe(b *testing.B) {
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		h := startWipeB(b)
		const n, each = 5, 1000
		users := make([]bridge.Addr, n)
		for i := range users {
			users[i] = h.tg.User(fmt.Sprint("u", i))
		}
		h.tg.Say(b, users[0], "/newroom")
		pw := h.tg.WaitText(b, users[0].Chat, "Your room is open").Code
		for _, u := range users[1:] {
			h.tg.Say(b, u, pw)
			h.tg.WaitText(b, u.Chat, "You joined")
		}
		for i := range each {
			for _, u := range users {
				h.tg.Say(b, u, fmt.Sprint("m", i))
			}
			if i%50 == 49 {
				for _, u := range users {
					h.tg.WaitFor(b, u.Chat, time.Minute, "the relays so far", func(ms []bridge.Message) bool { return len(relays(ms)) == (n-1)*(i+1) })
				}
			}
		}
		b.StartTimer()
		start := time.Now()
		h.tg.Say(b, users[0], "/destroy")
		for _, u := range users {
			h.tg.WaitChat(b, u.Chat, time.Minute, "the final notice alone", func(ss []bridgetest.Shown) bool {
				return len(ss) == 1 && strings.Contains(ss[0].Msg.Text, "destroyed")
			})
		}
		elapsed += time.Since(start)
		b.StopTimer()
		h.stop()
		b.StartTimer()
	}
	b.ReportMetric(elapsed.Seconds()*1000/float64(b.N), "ms/wipe")
	b.ReportMetric(float64(b.N*5*5000)/elapsed.Seconds(), "ids/s")
}

// startWipeB is a core on one fake that deletes in batches of 100, for benchmarks.
func startWipeB(b *testing.B) *wipeHarness {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat, cfg.FloodRate = 0, 0
	h := &wipeHarness{tgd: bridgetest.NewDeleting("tg", bridge.Limits{MaxText: 4096}, 100, true)}
	h.tg = h.tgd.Platform
	br, err := bridge.New(cfg, nil, nil, h.tgd)
	if err != nil {
		b.Fatal(err)
	}
	h.b = br
	h.stop = bridgetest.Run(b, br)
	return h
}

// A stopping kumo erases the invoices nobody paid, with the /newroom that asked for them.
func TestShutdownWipesUnpaidInvoice(t *testing.T) {
	h := startWipe(t, nil)
	alice := h.tg.User("alice")
	h.say(t, h.tg, alice, "/newroom purple elephants dance at noon")
	waitInvoice(t, h.tg, alice.Chat)
	h.stop()
	if ss := h.tg.Chat(alice.Chat); len(ss) != 0 {
		var q []string
		for _, s := range ss {
			q = append(q, s.String())
		}
		t.Fatalf("after shutdown the chat still shows %q", q)
	}
}
