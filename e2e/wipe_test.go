package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// shownMsg is one message a person's chat shows.
type shownMsg struct {
	id   string
	own  bool // the person wrote it
	text string
}

// chat is a person whose chat can be read as it is now, deletions applied.
type chat interface {
	person
	shows(ctx context.Context) []shownMsg
}

func (p *tgPerson) shows(context.Context) []shownMsg {
	var out []shownMsg
	for _, m := range p.fake.Shows(p.u.ID) {
		out = append(out, shownMsg{id: fmt.Sprint(m.MessageID), own: m.Incoming, text: m.Text})
	}
	return out
}

func (p *dcPerson) shows(context.Context) []shownMsg {
	var out []shownMsg
	for _, m := range p.fake.Shown(p.ch) {
		out = append(out, shownMsg{id: m.ID, own: m.AuthorID == p.u.ID, text: discordPlain(m.Content)})
	}
	return out
}

// shows, for a Matrix user, is what their client holds of the DM: the bot's messages and their own,
// minus the events their sync has seen redacted.
func (p *mxPerson) shows(ctx context.Context) []shownMsg {
	redacted := map[id.EventID]bool{}
	// WaitEvent with a context that has ended scans what the client recorded once, then returns.
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = p.u.WaitEvent(done, func(e *event.Event) bool {
		if e.RoomID == p.dm && e.Type == event.EventRedaction {
			r := e.Redacts
			if r == "" {
				s, _ := e.Content.Raw["redacts"].(string)
				r = id.EventID(s)
			}
			redacted[r] = true
		}
		return false
	})
	var out []shownMsg
	for _, sender := range []id.UserID{p.bot, p.u.ID} {
		for _, e := range p.u.Messages(p.dm, sender) {
			if redacted[e.ID] {
				continue
			}
			text := ""
			if c := e.Content.AsMessage(); c != nil {
				text = c.Body
			}
			out = append(out, shownMsg{id: e.ID.String(), own: sender == p.u.ID, text: text})
		}
	}
	return out
}

func (p *webPerson) shows(context.Context) []shownMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []shownMsg
	for _, k := range p.order {
		if text, ok := p.lines[k]; ok {
			out = append(out, shownMsg{id: k, own: strings.HasPrefix(k, "o"), text: text})
		}
	}
	return out
}

// isFinal says a message is a room's final notice: what a chat keeps of a room.
func isFinal(text string) bool {
	return strings.Contains(text, "💥") || strings.Contains(text, "👋 You left the room")
}

// waitWiped waits until p's chat shows nothing of its rooms but their final notices (and its own
// messages where the platform lets no bot delete them: keepOwn), ignoring what it showed before the
// first room (before).
func waitWiped(t testing.TB, ctx context.Context, p chat, before map[string]bool, keepOwn bool, what string) {
	t.Helper()
	var left []shownMsg
	for {
		left = left[:0]
		finals := 0
		for _, m := range p.shows(ctx) {
			switch {
			case before[m.id]:
			case !m.own && isFinal(m.text):
				finals++
			case m.own && keepOwn:
			default:
				left = append(left, m)
			}
		}
		if len(left) == 0 && finals > 0 {
			return
		}
		select {
		case <-ctx.Done():
			var q []string
			for _, m := range left {
				q = append(q, fmt.Sprintf("own=%v %q", m.own, m.text))
			}
			t.Fatalf("%s: after %s the chat still shows %d messages of the room:\n%s", p.platform(), what, len(left), strings.Join(q, "\n"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestSelfDestructEverywhere runs the real binary with members on Telegram, Discord, Matrix and the
// web in one room, three times: a member leaves and the creator destroys the room (under a storm of
// Telegram 429s), a room expires, and kumo stops on SIGTERM. Afterwards every member's chat shows
// nothing of the rooms but their final notices (Discord members: plus their own messages), read from
// the fakes' records, the web client's view and the Matrix user's client, whose redactions are then
// checked on the homeserver.
func TestSelfDestructEverywhere(t *testing.T) {
	t.Parallel()
	const lifetime = 45 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, tg, dc := startWithFakes(t, ctx, setup{Lifetime: lifetime, Matrix: true, Web: true})

	alice, bob, carol, wendy := newTG(tg, "Wipe"), newDC(dc, "wiped"), newMX(t, ctx, k, "wipe"), newWeb(t, ctx, k)
	members := []chat{alice, bob, carol, wendy}
	before := map[chat]map[string]bool{}
	for _, p := range members {
		before[p] = map[string]bool{}
		for _, m := range p.shows(ctx) {
			before[p][m.id] = true
		}
	}
	keepOwn := func(p chat) bool { return p == bob }
	talk := func(room string) {
		t.Helper()
		marks := map[chat]int{}
		for _, p := range members {
			marks[p] = len(p.seen())
		}
		for i := range 3 {
			for _, p := range members {
				p.send(t, ctx, secret(fmt.Sprintf("%s %s says %d", room, p.platform(), i)))
			}
		}
		for _, p := range members {
			for _, from := range members {
				if from != p {
					waitSeen(t, ctx, p, marks[p], "the last words", contains(fmt.Sprintf("%s %s says 2", room, from.platform())))
				}
			}
		}
	}
	open := func(room string) {
		t.Helper()
		ps := make([]person, len(members))
		for i, p := range members {
			ps[i] = p
		}
		openRoom(t, ctx, secret(room+"-"+randHex(6)+"-pw"), alice, ps[1:]...)
	}
	checkAll := func(what string) {
		t.Helper()
		for _, p := range members {
			waitWiped(t, ctx, p, before[p], keepOwn(p), what)
		}
	}

	// Room 1: carol (Matrix) leaves, and only her DM is wiped; then alice destroys it while Telegram
	// answers 429 to the first deletions.
	open("one")
	if _, text := waitSeen(t, ctx, bob, 0, "the note on his own messages", contains("You joined the room as ")); !strings.Contains(text, "does not let it erase yours") {
		t.Errorf("the Discord member is not told his own messages stay: %q", text)
	}
	talk("one")
	mark := len(carol.seen())
	carol.send(t, ctx, "/leave")
	waitSeen(t, ctx, carol, mark, "her leave", contains("You left the room"))
	waitWiped(t, ctx, carol, before[carol], false, "/leave")
	if n := len(alice.shows(ctx)); n < 10 {
		t.Fatalf("alice's chat was wiped when carol left: %d messages", n)
	}
	var carolsRoom []id.EventID
	for _, e := range carol.u.Messages(carol.dm, carol.bot) {
		if c := e.Content.AsMessage(); c != nil && !before[carol][e.ID.String()] && !isFinal(c.Body) {
			carolsRoom = append(carolsRoom, e.ID)
		}
	}
	if err := carol.u.WaitRedacted(ctx, carol.dm, carolsRoom); err != nil {
		t.Fatalf("the homeserver still holds carol's room: %v", err)
	}
	tg.FailNext("deleteMessages", 5, 429, "Too Many Requests: retry after 1", 1)
	alice.send(t, ctx, "/destroy")
	checkAll("/destroy")

	// Room 2: it expires.
	open("two")
	talk("two")
	checkAll("the room's expiry")

	// Room 3: kumo stops.
	open("three")
	talk("three")
	k.stop(time.Minute)
	checkAll("SIGTERM")
	for _, p := range members {
		if _, text := waitSeen(t, ctx, p, 0, "the shutdown notice", contains("kumo is shutting down")); !strings.Contains(text, "erased") {
			t.Errorf("%s: the shutdown notice does not count what was erased: %q", p.platform(), text)
		}
	}
}
