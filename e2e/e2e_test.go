package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// e2eLifetime is the room lifetime of the end-to-end test: long enough for every step before the
// end even on a loaded machine (they take about 15 s), short enough to wait for.
const e2eLifetime = 75 * time.Second

var bolt11RE = regexp.MustCompile(`lnbcrt[0-9a-z]+`)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// platforms is every messenger name; none may appear in what a member receives from another.
var platformNames = []string{"telegram", "discord", "matrix"}

// startWithFakes runs kumo as s says on a new Telegram fake and a new Discord fake, and returns once
// it is polling the one and connected to the other.
func startWithFakes(t testing.TB, ctx context.Context, s setup) (*kumo, *telegramtest.Server, *discordtest.Server) {
	t.Helper()
	tg := telegramtest.New(t)
	dc := discordtest.New(discordtest.Options{})
	t.Cleanup(dc.Close)
	s.Telegram, s.Discord = tg, dc
	k := startKumo(t, s)
	readyFakes(t, ctx, k, tg, dc)
	return k, tg, dc
}

// readyFakes waits until kumo is polling Telegram and connected to Discord's gateway.
func readyFakes(t testing.TB, ctx context.Context, k *kumo, tg *telegramtest.Server, dc *discordtest.Server) {
	t.Helper()
	if tg != nil {
		// A probe's /help answered: kumo is polling (the fake counts a getUpdates only once answered,
		// which for the first long poll is its whole timeout later).
		probe := telegramtest.User{ID: 2, FirstName: "probe"}
		tg.Inject(telegramtest.Incoming{From: probe, Text: "/help"})
		if _, err := tg.WaitSent(ctx, probe.ID, 1); err != nil {
			t.Fatalf("kumo never answered on Telegram: %v\n%s", err, tail(k.output(), 4000))
		}
	}
	if dc != nil {
		if err := dc.Wait(ctx, dc.Connected); err != nil {
			t.Fatalf("kumo never connected to Discord's gateway: %v\n%s", err, tail(k.output(), 4000))
		}
	}
}

// nickAfter reads a pseudonym that follows prefix and ends at ". " or ".\n".
func nickAfter(t testing.TB, text, prefix string) string {
	t.Helper()
	i := strings.Index(text, prefix)
	if i < 0 {
		t.Fatalf("no %q in %q", prefix, text)
	}
	rest := text[i+len(prefix):]
	end := strings.Index(rest, ".")
	if end <= 0 {
		t.Fatalf("no pseudonym after %q in %q", prefix, text)
	}
	return rest[:end]
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	// kumo's lnd must not restart under this test (TestLNDRestart does that, and holds it to write).
	lndMu.RLock()
	defer lndMu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tg := telegramtest.New(t)
	dc := discordtest.New(discordtest.Options{})
	t.Cleanup(dc.Close)
	k := startKumo(t, setup{PriceSat: 1000, Lifetime: e2eLifetime, Telegram: tg, Discord: dc, Matrix: true, LND: true})
	readyFakes(t, ctx, k, tg, dc)
	began := time.Now()
	logStep := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }

	alice := newTG(tg, "Alice")
	bob := newDC(dc, "bobby")
	carol := newMX(t, ctx, k, "carol")
	people := []person{alice, bob, carol}
	logStep("people ready")

	// alice buys a room with a password of her own; the payer's lnd pays the BOLT11 that the fake
	// Telegram shows her.
	password := secret("e2e-" + randHex(8) + "-pw")
	alice.send(t, ctx, "/newroom "+password)
	_, invText := waitSeen(t, ctx, alice, 0, "an invoice", bolt11RE.MatchString)
	bolt11 := bolt11RE.FindString(invText)
	payment := netw.Pay(ctx, bolt11)
	iOpen, open := waitSeen(t, ctx, alice, 0, "her room open", contains("room is open"))
	if !strings.Contains(open, password) {
		t.Errorf("the creator is not shown the room's password: %q", open)
	}
	paid, err := payment.Wait(ctx)
	if err != nil || paid.Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("payment: %v %v", paid, err)
	}
	// This payment's own records, not the payer's balance, which other tests' payments move too.
	if err := netw.CheckPaid(ctx, paid, 1000); err != nil {
		t.Errorf("the payer paid something other than the price: %v", err)
	}
	aliceNick := nickAfter(t, open, "You are ")
	logStep("room paid and open")

	// bob (Discord) and carol (Matrix, encrypted DM) join by sending the password.
	bob.send(t, ctx, password)
	_, joined := waitSeen(t, ctx, bob, 0, "his join", contains("You joined the room as "))
	bobNick := nickAfter(t, joined, "joined the room as ")
	waitSeen(t, ctx, alice, iOpen, "bob's join", contains(bobNick+" joined"))
	carol.send(t, ctx, password)
	_, joined = waitSeen(t, ctx, carol, 0, "her join", contains("You joined the room as "))
	carolNick := nickAfter(t, joined, "joined the room as ")
	waitSeen(t, ctx, alice, iOpen, "carol's join", contains(carolNick+" joined"))
	waitSeen(t, ctx, bob, 0, "carol's join", contains(carolNick+" joined"))

	ended := func(p person) bool {
		for _, m := range p.seen() {
			if strings.Contains(m, "self-destructed") {
				return true
			}
		}
		return false
	}
	alive := func(step string) {
		t.Helper()
		for _, p := range people {
			if ended(p) {
				t.Fatalf("the room's lifetime (%s) ran out before %s: the machine is too slow for this test", e2eLifetime, step)
			}
		}
	}

	// Each one's words, with emoji and every platform's markup, reach both others verbatim behind
	// their pseudonym and nothing else.
	nicks := map[person]string{alice: aliceNick, bob: bobNick, carol: carolNick}
	relay := func(from person, text string, to ...person) {
		t.Helper()
		marks := make([]int, len(to))
		for i, p := range to {
			marks[i] = len(p.seen())
		}
		from.send(t, ctx, text)
		for i, p := range to {
			_, got := waitSeen(t, ctx, p, marks[i], "the words of "+nicks[from], contains(text))
			if want := nicks[from] + ": " + text; got != want {
				t.Errorf("%s received %q, want %q", p.platform(), got, want)
			}
			low := strings.ToLower(got)
			for _, name := range platformNames {
				if strings.Contains(low, name) {
					t.Errorf("%s received %q: it names a platform", p.platform(), got)
				}
			}
			for _, tr := range from.traces() {
				if tr != "" && strings.Contains(got, tr) {
					t.Errorf("%s received %q: it carries the sender's %q", p.platform(), got, tr)
				}
			}
		}
	}
	texts := []string{
		secret("héllo 🌍🎉 <b>bold</b> *star* _under_ ~strike~ `tick` [a](http://x.example) @everyone &amp; " + randHex(4)),
		secret("👋🏽 ||spoiler|| # not a header > not a quote <i>i</i> @room " + randHex(4)),
		secret("🙂 **two** __three__ <a href=\"http://y.example\">link</a> \\ back " + randHex(4)),
	}
	relay(alice, texts[0], bob, carol)
	relay(bob, texts[1], alice, carol)
	relay(carol, texts[2], alice, bob)
	alive("the relays")

	// /who lists pseudonyms, the asker marked, and nothing else about anyone.
	mark := len(carol.seen())
	carol.send(t, ctx, "/who")
	_, who := waitSeen(t, ctx, carol, mark, "the /who answer", contains("in this room:"))
	for _, want := range []string{"3 members in this room:", "• " + aliceNick + "\n", "• " + bobNick + "\n", "• " + carolNick + " (you)"} {
		if !strings.Contains(who+"\n", want) {
			t.Errorf("/who answered %q: no %q", who, want)
		}
	}

	// /nick renames bob for everyone; his next words carry the new name.
	newNick := "Nebula" + randHex(2)
	marks := []int{len(alice.seen()), len(bob.seen()), len(carol.seen())}
	bob.send(t, ctx, "/nick "+newNick)
	waitSeen(t, ctx, bob, marks[1], "his rename", contains("You are now "+newNick+"."))
	waitSeen(t, ctx, alice, marks[0], "bob's rename", contains(bobNick+" is now "+newNick+"."))
	waitSeen(t, ctx, carol, marks[2], "bob's rename", contains(bobNick+" is now "+newNick+"."))
	nicks[bob] = newNick
	relay(bob, secret("renamed ✨ "+randHex(4)), alice, carol)

	// /leave: carol is out, told so; the others are told; alice's next words do not reach her.
	marks = []int{len(alice.seen()), len(bob.seen()), len(carol.seen())}
	carol.send(t, ctx, "/leave")
	waitSeen(t, ctx, carol, marks[2], "her leave", contains("You left the room"))
	waitSeen(t, ctx, alice, marks[0], "carol leaving", contains(carolNick+" left. 2 members."))
	waitSeen(t, ctx, bob, marks[1], "carol leaving", contains(carolNick+" left. 2 members."))
	notForCarol := secret("only for two 🤫 " + randHex(4))
	relay(alice, notForCarol, bob)
	// alice's message was handled (bob has it), so anything for carol was queued before this /info
	// of hers: her answer arriving first proves nothing was.
	mark = len(carol.seen())
	carol.send(t, ctx, "/info")
	waitSeen(t, ctx, carol, mark, "the /info answer", contains("You are not in a room."))
	for _, m := range carol.seen() {
		if strings.Contains(m, notForCarol) {
			t.Errorf("carol left but received %q", m)
		}
	}
	// She comes back, so that the end reaches all three.
	mark = len(carol.seen())
	carol.send(t, ctx, password)
	_, joined = waitSeen(t, ctx, carol, mark, "her second join", contains("You joined the room as "))
	nicks[carol] = nickAfter(t, joined, "joined the room as ")
	relay(carol, secret("back again 🔁 "+randHex(4)), alice, bob)
	alive("the last step")
	logStep("steps done")

	// The lifetime ends the room on all three platforms at once...
	for _, p := range people {
		_, end := waitSeen(t, ctx, p, 0, "the room's end", contains("self-destructed"))
		if !strings.HasPrefix(end, "🔔 ") {
			t.Errorf("%s: the end is not a notice: %q", p.platform(), end)
		}
	}
	logStep("room ended")
	// ...and nothing relays after it: each one's words are answered as from someone in no room,
	// and, once all are answered, a further /info of each (behind anything queued for them) shows
	// none of those words reached anyone.
	after := map[person]string{}
	for _, p := range people {
		after[p] = secret("after the end " + p.platform()[:2] + " " + randHex(4))
		mark := len(p.seen())
		p.send(t, ctx, after[p])
		waitSeen(t, ctx, p, mark, "the answer to words after the end", contains("not in a room"))
	}
	for _, p := range people {
		mark := len(p.seen())
		p.send(t, ctx, "/info")
		waitSeen(t, ctx, p, mark, "the /info answer", contains("You are not in a room."))
		for _, m := range p.seen() {
			for q, text := range after {
				if strings.Contains(m, text) {
					t.Errorf("%s received %q, sent by %s after the room ended", p.platform(), m, q.platform())
				}
			}
		}
	}

	// Over the whole conversation nobody received anything that identifies another person.
	for _, p := range people {
		for _, q := range people {
			if p == q {
				continue
			}
			for _, m := range p.seen() {
				for _, tr := range q.traces() {
					if len(tr) >= 4 && strings.Contains(m, tr) {
						t.Errorf("%s received %q, which carries %s's %q", p.platform(), m, q.platform(), tr)
					}
				}
			}
		}
	}
	logStep("checks done")
	if n := carol.u.DecryptFailures(); n != 0 {
		t.Errorf("the Matrix user could not decrypt %d events", n)
	}
	_ = fmt.Sprint
}
