package telegram_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

var erasedRe = regexp.MustCompile(`(\d+) messages? (was|were) erased`)

// waitWiped waits until u's chat shows nothing but the final notice (the user's own messages
// included: a bot may delete them in a private chat), and checks its count of erased messages.
func (w *world) waitWiped(t testing.TB, u telegramtest.User, notice string) {
	t.Helper()
	shows, err := w.s.WaitShows(w.ctx, u.ID, func(ss []telegramtest.Shown) bool {
		return len(ss) == 1 && !ss[0].Incoming && strings.Contains(ss[0].Text, notice)
	})
	if err != nil {
		var q []string
		for _, s := range shows {
			q = append(q, fmt.Sprintf("%v %q", s.Incoming, s.Text))
		}
		t.Fatalf("%s's chat after the wipe: %v\n%s", u.FirstName, err, strings.Join(q, "\n"))
	}
	m := erasedRe.FindStringSubmatch(shows[0].Text)
	if m == nil {
		t.Fatalf("final notice without a count: %q", shows[0].Text)
	}
	// Everything the chat ever held but the final notice: the bot's messages and the user's.
	sent := len(w.s.Sent(u.ID))
	var last int
	for _, s := range w.s.Sent(u.ID) {
		last = max(last, s.MessageID)
	}
	if n, _ := strconv.Atoi(m[1]); n != last-1 {
		t.Fatalf("%s: final notice says %d erased; the chat held %d messages (%d from the bot) before it", u.FirstName, n, last-1, sent-1)
	}
}

func (w *world) talk(t testing.TB, rounds int, users ...telegramtest.User) {
	t.Helper()
	before := make([]int, len(users))
	for i, u := range users {
		before[i] = len(w.s.Sent(u.ID))
	}
	for r := range rounds {
		for _, u := range users {
			w.say(u, fmt.Sprintf("%s %d", u.FirstName, r))
		}
	}
	for i, u := range users {
		// Relayed messages, one a line: the core may combine a backlog into one send.
		want := rounds * (len(users) - 1)
		if _, err := w.s.WaitFor(w.ctx, u.ID, func(sent []telegramtest.Sent) bool {
			n := 0
			for _, s := range sent[min(before[i], len(sent)):] {
				n += strings.Count(s.Text, "\n") + 1
			}
			return n >= want
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// Through the real adapter and the fake Bot API: when a room ends, each member's chat keeps nothing
// of it but the final notice — not the relays, notices, the password, nor their own messages.
func TestWipeTelegramChats(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		end      func(w *world)
		notice   string
	}{
		{"destroy", 0, func(w *world) { w.say(alice, "/destroy") }, "The creator destroyed this room"},
		{"shutdown", 0, func(w *world) { w.stop() }, "kumo is shutting down"},
		{"expiry", 5 * time.Second, func(*world) {}, "This room has self-destructed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startWorld(t, unlimited(), func(c *bridge.Config) {
				if tc.lifetime > 0 {
					c.Rooms.Lifetime = tc.lifetime
				}
			})
			w.openRoom(t, alice, bob, carol)
			w.talk(t, 3, alice, bob, carol)
			for _, s := range w.s.Sent(bob.ID) {
				if strings.HasPrefix(s.Text, w.nick(t, alice)+": ") && !s.Protected {
					t.Fatalf("a relayed message was sent without protect_content: %q", s.Text)
				}
			}
			tc.end(w)
			for _, u := range []telegramtest.User{alice, bob, carol} {
				w.waitWiped(t, u, tc.notice)
			}
		})
	}
}

// A member who leaves has their chat wiped at once, while the room goes on.
func TestWipeTelegramLeave(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	w.openRoom(t, alice, bob, carol)
	w.talk(t, 2, alice, bob, carol)
	w.say(bob, "/leave")
	w.waitWiped(t, bob, "You left the room")
	w.talk(t, 1, alice, carol)
	n := 0 // lines: a combined send shows several relayed messages
	for _, sh := range w.s.Shows(alice.ID) {
		n += strings.Count(sh.Text, "\n") + 1
	}
	if n < 8 {
		t.Fatalf("alice's chat was wiped when bob left: %d lines", n)
	}
}

// 429s on deleteMessages are waited out: no deletion is lost.
func TestWipeTelegramRateLimited(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	w.openRoom(t, alice, bob)
	w.talk(t, 3, alice, bob)
	w.s.FailNext("deleteMessages", 3, 429, "Too Many Requests: retry after 1", 1)
	w.say(alice, "/destroy")
	for _, u := range []telegramtest.User{alice, bob} {
		w.waitWiped(t, u, "The creator destroyed this room")
	}
	if n := w.s.Stats().Calls["deleteMessages"]; n < 5 {
		t.Fatalf("%d deleteMessages calls: the 429s were not retried", n)
	}
}

// A message past Telegram's 48-hour window cannot be deleted: the others still are, and the final
// notice says how many stayed.
func TestWipeTelegramOldMessages(t *testing.T) {
	w := startWorld(t, unlimited(), nil)
	w.openRoom(t, alice, bob)
	w.say(bob, "old")
	// Wait for the relay itself, not for a count of alice's messages (which the room's own replies
	// change): once it reached alice, everything in bob's chat so far is what gets backdated.
	if _, err := w.s.WaitShows(w.ctx, alice.ID, func(ss []telegramtest.Shown) bool {
		for _, s := range ss {
			if !s.Incoming && strings.HasSuffix(s.Text, ": old") {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	w.s.Backdate(bob.ID, 49*time.Hour)
	w.talk(t, 1, alice, bob)
	w.say(alice, "/destroy")
	shows, err := w.s.WaitShows(w.ctx, bob.ID, func(ss []telegramtest.Shown) bool {
		return len(ss) > 0 && strings.Contains(ss[len(ss)-1].Text, "could not be erased")
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shows[:len(shows)-1] {
		if time.Since(s.At) < 48*time.Hour {
			t.Fatalf("a recent message survived the wipe: %q", s.Text)
		}
	}
}

// TestWipeTelegramBigRoom: 5 members who each send 1,000 messages, all erased through the fake
// (5,000 messages in each chat: 4,000 relays and 1,000 of their own).
func TestWipeTelegramBigRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("25,000 messages through the fake")
	}
	users := []telegramtest.User{alice, bob, carol, {ID: 1004, FirstName: "Dan"}, {ID: 1005, FirstName: "Eve"}}
	w := startWorld(t, unlimited(), nil)
	w.openRoom(t, users[0], users[1:]...)
	for range 20 { // in steps, so that no sender's queue (64) overflows
		w.talk(t, 50, users...)
	}
	w.say(alice, "/destroy")
	for _, u := range users {
		w.waitWiped(t, u, "The creator destroyed this room")
	}
}

// BenchmarkWipeTelegram wipes the room of TestWipeTelegramBigRoom (5 members × 1,000 messages: 5,000
// in each chat, 250 deleteMessages calls) through the core and the adapter, against a fake that
// enforces a delete limit equal to the adapter's default delete pacing (30 calls/s: Telegram
// documents none). It reports the wipe's time, its calls per second as a share of that limit, and
// the 429s met. Run: go test -tags goolm -run '^$' -bench WipeTelegram -benchtime 1x ./platforms/telegram/
func BenchmarkWipeTelegram(b *testing.B) {
	def := telegram.DefaultPacing()
	users := []telegramtest.User{alice, bob, carol, {ID: 1004, FirstName: "Dan"}, {ID: 1005, FirstName: "Eve"}}
	var elapsed time.Duration
	var calls, limited int
	for b.Loop() {
		b.StopTimer()
		w := startWorld(b, telegramtest.Limits{Delete: def.Delete, DeleteBurst: def.DeleteBurst}, nil)
		w.openRoom(b, users[0], users[1:]...)
		for range 20 {
			w.talk(b, 50, users...)
		}
		before, limitedBefore := w.s.Stats().Calls["deleteMessages"], w.s.Stats().RateLimited
		b.StartTimer()
		start := time.Now()
		w.say(alice, "/destroy")
		for _, u := range users {
			w.waitWiped(b, u, "The creator destroyed this room")
		}
		elapsed += time.Since(start)
		b.StopTimer()
		calls += w.s.Stats().Calls["deleteMessages"] - before
		limited += w.s.Stats().RateLimited - limitedBefore
		w.stop()
		b.StartTimer()
	}
	perSec := float64(calls) / elapsed.Seconds()
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/wipe")
	b.ReportMetric(perSec, "calls/s")
	b.ReportMetric(perSec/float64(def.Delete), "share-of-limit")
	b.ReportMetric(float64(limited)/float64(b.N), "429s/op")
}
