package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// convoMsg is one message a chat shows now, with what the conversation did to it.
type convoMsg struct {
	id        string
	text      string
	replyTo   string // the id of the message it natively replies to ("": none)
	edited    bool
	reactions []string // the bot's reactions on it
}

// talker is a member who can act on messages the way their platform lets them, and whose chat can
// be read back with what was done to it.
type talker interface {
	person
	// convo is what the chat shows now of the bot's messages, deletions applied.
	convo(ctx context.Context) []convoMsg
	// say sends text and returns the platform's id of the person's own message.
	say(t testing.TB, ctx context.Context, text string) string
	reply(t testing.TB, ctx context.Context, to, text string)
	edit(t testing.TB, ctx context.Context, msg, text string)
	react(t testing.TB, ctx context.Context, msg, emoji string)
	unsend(t testing.TB, ctx context.Context, msg string)
}

// --- Telegram ---

func (p *tgPerson) convo(context.Context) []convoMsg {
	var out []convoMsg
	for _, m := range p.fake.Shows(p.u.ID) {
		if m.Incoming {
			continue
		}
		c := convoMsg{id: strconv.Itoa(m.MessageID), text: m.Text, edited: m.Edits > 0, reactions: m.Reactions}
		if m.ReplyTo != 0 {
			c.replyTo = strconv.Itoa(m.ReplyTo)
		}
		out = append(out, c)
	}
	return out
}

func (p *tgPerson) say(t testing.TB, ctx context.Context, text string) string {
	t.Helper()
	p.send(t, ctx, text)
	for _, m := range p.fake.Shows(p.u.ID) {
		if m.Incoming && m.Text == text {
			return strconv.Itoa(m.MessageID)
		}
	}
	t.Fatalf("telegram: the chat does not show the message just sent")
	return ""
}

func tgID(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (p *tgPerson) reply(t testing.TB, _ context.Context, to, text string) {
	p.fake.Inject(telegramtest.Incoming{From: p.u, Text: text, ReplyTo: tgID(t, to)})
}
func (p *tgPerson) edit(t testing.TB, _ context.Context, msg, text string) {
	p.fake.InjectEdit(p.u, tgID(t, msg), text)
}
func (p *tgPerson) react(t testing.TB, _ context.Context, msg, emoji string) {
	p.fake.InjectReaction(p.u, tgID(t, msg), nil, []string{emoji})
}

// unsend is Telegram's way: a reply "/unsend" to one's own message.
func (p *tgPerson) unsend(t testing.TB, ctx context.Context, msg string) {
	p.reply(t, ctx, msg, "/unsend")
}

// --- Discord ---

func (p *dcPerson) convo(context.Context) []convoMsg {
	var out []convoMsg
	for _, m := range p.fake.Shown(p.ch) {
		if m.AuthorID == p.u.ID {
			continue
		}
		out = append(out, convoMsg{id: m.ID, text: discordPlain(m.Content), replyTo: m.ReplyTo, edited: m.Edits > 0, reactions: m.BotReactions})
	}
	return out
}

func (p *dcPerson) say(_ testing.TB, _ context.Context, text string) string {
	return p.fake.SendDM(p.u.ID, text)
}
func (p *dcPerson) reply(_ testing.TB, _ context.Context, to, text string) {
	p.fake.ReplyDM(p.u.ID, to, text)
}
func (p *dcPerson) edit(_ testing.TB, _ context.Context, msg, text string) {
	p.fake.EditDM(p.u.ID, msg, text)
}
func (p *dcPerson) react(_ testing.TB, _ context.Context, msg, emoji string) {
	p.fake.ReactDM(p.u.ID, msg, emoji, true)
}
func (p *dcPerson) unsend(_ testing.TB, _ context.Context, msg string) {
	p.fake.DeleteDM(p.u.ID, msg)
}

// --- Matrix ---

// convo, for a Matrix user, folds the bot's m.replace events into the messages they edit and its
// m.reaction events (not redacted) into the reactions of the messages they annotate.
func (p *mxPerson) convo(ctx context.Context) []convoMsg {
	var all []*event.Event
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = p.u.WaitEvent(done, func(e *event.Event) bool {
		if e.RoomID == p.dm {
			all = append(all, e)
		}
		return false
	})
	redacted := map[id.EventID]bool{}
	for _, e := range all {
		if e.Type == event.EventRedaction {
			r := e.Redacts
			if r == "" {
				s, _ := e.Content.Raw["redacts"].(string)
				r = id.EventID(s)
			}
			redacted[r] = true
		}
	}
	var out []convoMsg
	at := map[id.EventID]int{}
	for _, e := range all {
		if e.Sender != p.bot || redacted[e.ID] {
			continue
		}
		switch e.Type {
		case event.EventMessage:
			c := e.Content.AsMessage()
			if c == nil {
				continue
			}
			if c.NewContent != nil && c.RelatesTo != nil && c.RelatesTo.Type == event.RelReplace {
				if i, ok := at[c.RelatesTo.EventID]; ok {
					out[i].text, out[i].edited = c.NewContent.Body, true
				}
				continue
			}
			at[e.ID] = len(out)
			out = append(out, convoMsg{id: e.ID.String(), text: c.Body, replyTo: c.RelatesTo.GetReplyTo().String()})
		case event.EventReaction:
			rel := e.Content.AsReaction().RelatesTo
			if i, ok := at[rel.EventID]; ok {
				out[i].reactions = append(out[i].reactions, rel.Key)
			}
		}
	}
	return out
}

func (p *mxPerson) say(t testing.TB, ctx context.Context, text string) string {
	t.Helper()
	eid, err := p.u.Send(ctx, p.dm, text)
	if err != nil {
		t.Fatalf("matrix send: %v", err)
	}
	return eid.String()
}

func (p *mxPerson) sendContent(t testing.TB, ctx context.Context, typ event.Type, content any) {
	t.Helper()
	if _, err := p.u.Client.SendMessageEvent(ctx, p.dm, typ, content); err != nil {
		t.Fatalf("matrix send: %v", err)
	}
}

func (p *mxPerson) reply(t testing.TB, ctx context.Context, to, text string) {
	p.sendContent(t, ctx, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text,
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: id.EventID(to)}}})
}
func (p *mxPerson) edit(t testing.TB, ctx context.Context, msg, text string) {
	c := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
	c.SetEdit(id.EventID(msg))
	p.sendContent(t, ctx, event.EventMessage, c)
}
func (p *mxPerson) react(t testing.TB, ctx context.Context, msg, emoji string) {
	p.sendContent(t, ctx, event.EventReaction, &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: id.EventID(msg), Key: emoji}})
}
func (p *mxPerson) unsend(t testing.TB, ctx context.Context, msg string) {
	t.Helper()
	if _, err := p.u.Client.RedactEvent(ctx, p.dm, id.EventID(msg)); err != nil {
		t.Fatalf("matrix redact: %v", err)
	}
}

// --- web ---

func (p *webPerson) convo(context.Context) []convoMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []convoMsg
	for _, k := range p.order {
		text, ok := p.lines[k]
		if !ok || strings.HasPrefix(k, "o") {
			continue
		}
		out = append(out, convoMsg{id: k, text: text, replyTo: p.replyTo[k], edited: p.edited[k], reactions: p.reactions[k]})
	}
	return out
}

func (p *webPerson) say(t testing.TB, _ context.Context, text string) string {
	return p.sendReply(t, text, "")
}
func (p *webPerson) reply(t testing.TB, _ context.Context, to, text string) {
	p.sendReply(t, text, to)
}
func (p *webPerson) edit(t testing.TB, _ context.Context, msg, text string) {
	p.write(t, map[string]string{"type": "edit", "target": msg, "text": text})
}
func (p *webPerson) react(t testing.TB, _ context.Context, msg, emoji string) {
	p.write(t, map[string]string{"type": "react", "target": msg, "emoji": emoji})
}
func (p *webPerson) unsend(t testing.TB, _ context.Context, msg string) {
	p.write(t, map[string]string{"type": "unsend", "target": msg})
}

// waitConvo polls p's chat until cond finds what it waits for in it.
func waitConvo(t testing.TB, ctx context.Context, p talker, what string, cond func([]convoMsg) bool) []convoMsg {
	t.Helper()
	for {
		msgs := p.convo(ctx)
		if cond(msgs) {
			return msgs
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			for _, m := range msgs {
				fmt.Fprintf(&b, "%s reply=%q edited=%v reactions=%v: %q\n", m.id, m.replyTo, m.edited, m.reactions, m.text)
			}
			t.Fatalf("%s never showed %s; it shows:\n%s", p.platform(), what, b.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func copyWith(msgs []convoMsg, text string) (convoMsg, bool) {
	for _, m := range msgs {
		if strings.Contains(m.text, text) {
			return m, true
		}
	}
	return convoMsg{}, false
}

// TestConversationEverywhere runs the real binary with a member on each of Telegram, Discord,
// Matrix and the web. Each in turn writes a message, replies to it, edits it, reacts 👍 to it and
// takes it back, each the way their platform does it (Telegram's /unsend by reply, Discord's
// MESSAGE_UPDATE and MESSAGE_DELETE, Matrix's m.in_reply_to, m.replace, m.reaction and redaction,
// the page's reply, edit, react and unsend); every other member sees each as the native action on
// their own copy: a reply to it, the copy edited in place, the bot's 👍 on it, the copy gone.
// Nothing any of them is shown carries the actor's platform identity.
func TestConversationEverywhere(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	k, tg, dc := startWithFakes(t, ctx, setup{Lifetime: time.Hour, Matrix: true, Web: true})

	alice, bob, carol, wendy := newTG(tg, "Talker"), newDC(dc, "talker"), newMX(t, ctx, k, "talker"), newWeb(t, ctx, k)
	members := []talker{alice, bob, carol, wendy}
	nicks := openRoom(t, ctx, secret("convo-"+randHex(6)+"-pw"), alice, bob, carol, wendy)

	var relayed []string // every text relayed, to check what carries it
	for _, actor := range members {
		others := slices.DeleteFunc(slices.Clone(members), func(p talker) bool { return p == actor })
		tag := actor.platform()[:2] + randHex(3)
		orig, fixed, answer := secret("first words "+tag), secret("fixed words "+tag), secret("an answer "+tag)
		relayed = append(relayed, orig, fixed, answer)

		// The original reaches everyone; each one's copy is what the rest acts on.
		msg := actor.say(t, ctx, orig)
		copies := map[talker]string{}
		for _, p := range others {
			msgs := waitConvo(t, ctx, p, "the original of "+tag, func(ms []convoMsg) bool { _, ok := copyWith(ms, orig); return ok })
			c, _ := copyWith(msgs, orig)
			if want := nicks[actor] + ": " + orig; c.text != want {
				t.Errorf("%s shows %q, want %q", p.platform(), c.text, want)
			}
			copies[p] = c.id
		}

		actor.reply(t, ctx, msg, answer)
		for _, p := range others {
			waitConvo(t, ctx, p, "the reply of "+tag+" to its own copy", func(ms []convoMsg) bool {
				c, ok := copyWith(ms, answer)
				return ok && c.replyTo == copies[p]
			})
		}

		actor.edit(t, ctx, msg, fixed)
		for _, p := range others {
			waitConvo(t, ctx, p, "the edit of "+tag+" on its copy", func(ms []convoMsg) bool {
				for _, m := range ms {
					if m.id == copies[p] {
						return m.edited && m.text == nicks[actor]+": "+fixed
					}
				}
				return false
			})
		}

		actor.react(t, ctx, msg, "👍")
		for _, p := range others {
			waitConvo(t, ctx, p, "👍 of "+tag+" on its copy", func(ms []convoMsg) bool {
				for _, m := range ms {
					if m.id == copies[p] {
						return slices.Contains(m.reactions, "👍")
					}
				}
				return false
			})
		}

		actor.unsend(t, ctx, msg)
		for _, p := range others {
			waitConvo(t, ctx, p, "the copy of "+tag+" gone", func(ms []convoMsg) bool {
				return !slices.ContainsFunc(ms, func(m convoMsg) bool { return m.id == copies[p] })
			})
		}
		if actor == alice {
			// Telegram's /unsend takes the original and the /unsend itself out of the author's chat.
			if _, err := tg.WaitShows(ctx, alice.u.ID, func(ss []telegramtest.Shown) bool {
				return !slices.ContainsFunc(ss, func(s telegramtest.Shown) bool {
					return s.Incoming && (s.Text == fixed || s.Text == "/unsend")
				})
			}); err != nil {
				t.Errorf("the unsent message or its /unsend stays in the Telegram author's chat: %v", err)
			}
		}
	}

	// Nothing relayed names a platform, and nobody was shown anything that carries another member's
	// identity.
	for _, p := range members {
		texts := p.seen()
		for _, m := range p.convo(ctx) {
			texts = append(texts, m.text) // edits included
		}
		for _, m := range texts {
			if slices.ContainsFunc(relayed, func(r string) bool { return strings.Contains(m, r) }) {
				low := strings.ToLower(m)
				for _, name := range platformNames {
					if strings.Contains(low, name) {
						t.Errorf("%s was shown %q: it names a platform", p.platform(), m)
					}
				}
			}
			for _, q := range members {
				if q == p {
					continue
				}
				for _, tr := range q.traces() {
					if len(tr) >= 4 && strings.Contains(m, tr) {
						t.Errorf("%s was shown %q, which carries %s's %q", p.platform(), m, q.platform(), tr)
					}
				}
			}
		}
	}
	if n := carol.u.DecryptFailures(); n != 0 {
		t.Errorf("the Matrix user could not decrypt %d events", n)
	}
}
