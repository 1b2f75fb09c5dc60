package bridge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kumo-chat/kumo/rooms"
)

// The conversation: replies, edits, unsend and reactions. A relayed message is mapped (rooms'
// conversation map) to its copies in every member's chat as deliveries show them; whatever a member
// does to a message in their chat (their own or kumo's copy of someone's) is found there and done to
// every other copy, in each recipient's own delivery lane, so that it always comes after the copy
// it acts on. The work is looked up when the lane runs it, not when it was queued: a copy still on
// its way when its author edited or took it back is edited or deleted too.

// convoOp is a delivery that acts on a recipient's copies of a message instead of sending one.
type convoOp struct {
	action Action
	room   string
	key    string    // the message's key in the room's map
	parts  []Message // ActionEdit: the new text, split for the recipient's platform
	text   string    // ActionEdit: the new text whole (for the line of a combined send)
	// ActionReact/ActionUnreact: the reactor's pseudonym, the emoji, and whether the emoji was
	// shown natively on the recipient's copy before it was taken off.
	nick, emoji string
	wasShown    bool
	// own, for an /unsend, are the author's messages to delete from their own chat (their original
	// and the /unsend command).
	own []MessageID
}

// maxEmoji bounds a reaction: a few code points (flags, skin tones, ZWJ sequences), never words.
const maxEmoji = 32

// validEmoji says whether s can be relayed as a reaction: short, and nothing a person could use to
// write words into someone else's chat (letters, digits, spaces, controls).
func validEmoji(s string) bool {
	if s == "" || len(s) > maxEmoji || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// quoteOf is the fallback shown with a reply where the recipient has no copy to reply to.
func quoteOf(s rooms.Said) string { return "↩ " + s.Nick + ": " + s.Snippet }

// converse handles an edit, an unsend or a reaction, in the sender's lane.
func (b *Bridge) converse(in Inbound) {
	room, me, err := b.store.RoomOf(in.From.Key())
	if err != nil {
		return // nothing of a room the person is not in (any more) is touched
	}
	said, ok := b.store.Find(room.ID, me.Key(), string(in.Target))
	if !ok {
		return // not a message of this room, or one the map forgot: nothing to do
	}
	switch in.Action {
	case ActionEdit:
		if said.Author != me.Key() {
			return
		}
		text := strings.ToValidUTF8(in.Text, "\uFFFD")
		if strings.TrimSpace(text) == "" {
			return
		}
		if n := utf8.RuneCountInString(text); n > MaxInbound {
			b.reply(in.From, fmt.Sprintf("That edit is too long (%d characters; the limit is %d). The others still see your earlier text.", n, MaxInbound))
			return
		}
		b.edit(room, me, said, text)
	case ActionUnsend:
		if said.Author == me.Key() {
			b.unsend(room, said, nil)
		}
	case ActionReact, ActionUnreact:
		if !validEmoji(in.Emoji) {
			return
		}
		b.react(room, me, said, in.Emoji, in.Action == ActionReact)
	}
}

// edit queues the new text for every other member's copies.
func (b *Bridge) edit(room rooms.Room, me rooms.Member, said rooms.Said, text string) {
	if _, ok := b.store.Edited(room.ID, said.Key, text); !ok {
		return
	}
	b.stats.edited.Add(1)
	var cache splitCache
	for _, m := range room.Members {
		if m.Key() == me.Key() {
			continue
		}
		parts := cache.get(b, m.Platform, Message{Kind: KindRelay, From: me.Nick, Text: text})
		b.queueOp(room.ID, addrOf(m), &convoOp{action: ActionEdit, room: room.ID, key: said.Key, parts: parts, text: text})
	}
}

// unsend queues the deletion of every copy; own are the author's messages to delete with it.
func (b *Bridge) unsend(room rooms.Room, said rooms.Said, own []MessageID) {
	if _, ok := b.store.Unsay(room.ID, said.Key, len(room.Members)); !ok {
		return
	}
	b.stats.unsent.Add(1)
	for _, m := range room.Members {
		op := &convoOp{action: ActionUnsend, room: room.ID, key: said.Key}
		if m.Key() == said.Author {
			op.own = own
		}
		b.queueOp(room.ID, addrOf(m), op)
	}
}

// react queues a reaction for every other member's copy (the author's own message included).
func (b *Bridge) react(room rooms.Room, me rooms.Member, said rooms.Said, emoji string, add bool) {
	before, _ := b.store.Get(room.ID, said.Key)
	_, changed := b.store.React(room.ID, said.Key, me.Key(), emoji, add)
	if !changed {
		return
	}
	b.stats.reacted.Add(1)
	action := ActionReact
	if !add {
		action = ActionUnreact
	}
	for _, m := range room.Members {
		if m.Key() == me.Key() {
			continue
		}
		// A copy still queued for them is looked up when this runs, behind it.
		op := &convoOp{action: action, room: room.ID, key: said.Key, nick: me.Nick, emoji: emoji}
		if !add {
			op.wasShown = slices.Contains(b.native(m.Platform, before.Shown(m.Key())), emoji)
		}
		b.queueOp(room.ID, addrOf(m), op)
	}
}

// native is what of emojis the platform shows as the bot's reactions (nil: none).
func (b *Bridge) native(platform string, emojis []string) []string {
	r, ok := b.platforms[platform].(Reacter)
	if !ok {
		return nil
	}
	out := make([]string, 0, min(len(emojis), r.MaxReactions()))
	for _, e := range emojis {
		if len(out) == r.MaxReactions() {
			break
		}
		if r.CanReact(e) {
			out = append(out, e)
		}
	}
	return out
}

func (b *Bridge) queueOp(roomID string, to Addr, op *convoOp) {
	b.push(delivery{to: to, op: op, queued: b.now(), trace: b.roomTrace(roomID, to)})
}

// unsendCommand is /unsend, a reply to one of the person's own messages: where the platform tells
// the bot of no deletions (Telegram) it is how a member takes a message back.
func (b *Bridge) unsendCommand(in Inbound) {
	room, me, err := b.store.RoomOf(in.From.Key())
	if err != nil {
		b.reply(in.From, "You are not in a room.")
		return
	}
	if in.ReplyTo == "" {
		b.reply(in.From, "To take a message back, reply /unsend to it.")
		return
	}
	said, ok := b.store.Find(room.ID, me.Key(), string(in.ReplyTo))
	if !ok || said.Author != me.Key() || !slices.Contains(said.Copies[me.Key()], string(in.ReplyTo)) {
		b.reply(in.From, "Reply /unsend to a message of yours in this room (kumo no longer knows that one, or it is not yours).")
		return
	}
	own := []MessageID{in.ReplyTo}
	if in.ID != "" {
		own = append(own, in.ID)
	}
	b.unsend(room, said, own)
}

// runOp runs in the recipient's lane.
func (b *Bridge) runOp(key string, d delivery) {
	op := d.op
	member := d.to.Key()
	switch op.action {
	case ActionUnsend:
		ids, combined := b.store.TakeCopies(op.room, op.key, member)
		if combined && b.recombine(d, ids, op.key, "", true) {
			return
		}
		if combined && len(ids) > 0 {
			// Their copy carries other members' messages too: it stays, and a notice says which
			// was taken back.
			b.deliver(key, delivery{to: d.to, trace: d.trace, queued: d.queued,
				msg: Message{Kind: KindNotice, Text: "A message was taken back by its author.", ReplyTo: MessageID(ids[0])}})
			return
		}
		if len(op.own) > 0 {
			if del, ok := b.deleter(d.to.Platform); ok && del.DeletesTheirs(b.sendCtx, d.to) {
				ids = append(ids, idStrings(op.own)...)
				b.store.Forget(d.trace, idStrings(op.own)...)
			}
		}
		if len(ids) == 0 {
			return
		}
		if _, ok := b.deleter(d.to.Platform); ok {
			b.erase(d.to, ids)
			return
		}
		if ids[0] == "" || len(op.own) > 0 {
			return
		}
		b.deliver(key, delivery{to: d.to, trace: d.trace, queued: d.queued,
			msg: Message{Kind: KindNotice, Text: "A message was taken back by its author.", ReplyTo: MessageID(ids[0])}})
	case ActionEdit:
		b.editCopies(key, d)
	case ActionReact, ActionUnreact:
		b.reactCopy(key, d)
	}
}

func idStrings(ids []MessageID) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return s
}

// editCopies edits the recipient's copies in place: the pieces that exist are edited, pieces the
// new text needs beyond them are sent, and pieces it no longer needs are deleted (where the platform
// cannot delete, they are edited to say so).
func (b *Bridge) editCopies(key string, d delivery) {
	op := d.op
	said, ok := b.store.Get(op.room, op.key)
	if !ok {
		return
	}
	ids := said.Copies[d.to.Key()]
	if len(ids) == 0 {
		return // never shown to them (wiped, or they joined later)
	}
	ed, ok := b.platforms[d.to.Platform].(Editor)
	if ok && said.Combined[d.to.Key()] && b.recombine(d, ids, op.key, op.text, false) {
		return
	}
	if !ok || said.Combined[d.to.Key()] {
		// No edits on this platform, or their copy is a combined send that carries other members'
		// messages too (editing it would change theirs):
		// the new text as a reply to the old, marked as an edit.
		for i, p := range op.parts {
			if i == 0 {
				p.ReplyTo, p.Quote = MessageID(ids[0]), "✏️ "+said.Nick+" edited: "+said.Snippet
			}
			b.deliver(key, delivery{to: d.to, msg: p, trace: d.trace, said: op.key, room: op.room, queued: d.queued})
		}
		return
	}
	n := min(len(ids), len(op.parts))
	for i := range n {
		id := MessageID(ids[i])
		if err := b.retry(func() error { return ed.EditText(b.sendCtx, d.to, id, op.parts[i]) }); err != nil {
			b.log.Info("edit not relayed", "platform", d.to.Platform, "err", err)
			b.stats.failed.Add(1)
		}
	}
	for _, p := range op.parts[n:] {
		b.deliver(key, delivery{to: d.to, msg: p, trace: d.trace, said: op.key, room: op.room, queued: d.queued})
	}
	if extra := ids[n:]; len(extra) > 0 && len(op.parts) < len(ids) {
		b.store.SetCopies(op.room, op.key, d.to.Key(), ids[:n])
		if _, ok := b.deleter(d.to.Platform); ok {
			b.erase(d.to, extra)
			return
		}
		for _, id := range extra {
			m := Message{Kind: KindRelay, From: said.Nick, Text: "…"}
			_ = b.retry(func() error { return ed.EditText(b.sendCtx, d.to, MessageID(id), m) })
		}
	}
}

// reactCopy shows the reaction on the recipient's copy where the platform lets the bot react, and
// as a short notice replying to it otherwise.
func (b *Bridge) reactCopy(key string, d delivery) {
	op := d.op
	said, ok := b.store.Get(op.room, op.key)
	if !ok {
		return
	}
	ids := said.Copies[d.to.Key()]
	if len(ids) == 0 {
		return
	}
	id := MessageID(ids[0])
	shown := b.native(d.to.Platform, said.Shown(d.to.Key()))
	notice := true
	if r, ok := b.platforms[d.to.Platform].(Reacter); ok {
		if err := b.retry(func() error { return r.SetReactions(b.sendCtx, d.to, id, shown) }); err != nil {
			b.log.Info("reaction not relayed", "platform", d.to.Platform, "err", err)
		} else if op.action == ActionReact {
			notice = !slices.Contains(shown, op.emoji)
		} else {
			notice = !op.wasShown
		}
	}
	if op.action == ActionUnreact && slices.Contains(said.Shown(d.to.Key()), op.emoji) {
		notice = false // someone else's same reaction is still on it
	}
	if !notice {
		return
	}
	text := fmt.Sprintf("%s reacted %s to: %s", op.nick, op.emoji, said.Snippet)
	if op.action == ActionUnreact {
		text = fmt.Sprintf("%s took back %s from: %s", op.nick, op.emoji, said.Snippet)
	}
	b.deliver(key, delivery{to: d.to, trace: d.trace, queued: d.queued, msg: Message{Kind: KindNotice, Text: text, ReplyTo: id}})
}

// retry calls f under the delivery policy: a platform's wait is waited out, transient errors are
// retried with backoff, ErrRejected and ErrRecipientGone end it.
func (b *Bridge) retry(f func() error) error {
	pol := b.cfg.Retry
	backoff := pol.Backoff
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		err := f()
		var rl *RateLimitError
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrRejected), errors.Is(err, ErrRecipientGone):
			return err
		case errors.As(err, &rl):
			if waited+rl.RetryAfter > pol.MaxRateLimitWait || !b.sleep(rl.RetryAfter) {
				return err
			}
			waited += rl.RetryAfter
			attempt--
		default:
			if attempt >= pol.Attempts || !b.sleep(backoff) {
				return err
			}
			backoff = min(backoff*2, pol.MaxBackoff)
		}
	}
}

// splitCache splits a text once per platform: a handful of platforms at most, a slice beats a map.
type splitCache []struct {
	platform string
	parts    []Message
}

func (c *splitCache) get(b *Bridge, platform string, m Message) []Message {
	for _, s := range *c {
		if s.platform == platform {
			return s.parts
		}
	}
	parts := b.splitFor(platform, m)
	*c = append(*c, struct {
		platform string
		parts    []Message
	}{platform, parts})
	return parts
}

// combined records a combined send's lines in the conversation map (d carried several mapped
// messages and the platform returned its one id), for recombine.
func (b *Bridge) combined(d delivery, ids []MessageID) {
	if len(d.carried) == 0 || len(ids) != 1 {
		return
	}
	lines := make([]rooms.Line, len(d.carried))
	for i, one := range d.carried {
		if one.said == "" || one.room != d.carried[0].room {
			return
		}
		lines[i] = rooms.Line{Key: one.said, Nick: one.msg.From, Text: one.msg.Text}
	}
	b.store.Combine(d.carried[0].room, d.to.Key(), string(ids[0]), lines)
}

// recombine re-renders the recipient's combined send among ids in place after an edit (text) or
// an unsend (remove) of the message key it carries: the send is edited to its updated lines, or
// deleted when none is left. false when it cannot (no Editor, no Deleter for the last line, the
// new text does not fit one line of a combined send, or the map no longer knows the send whole):
// the caller falls back to a marked reply or a notice.
func (b *Bridge) recombine(d delivery, ids []string, key, text string, remove bool) bool {
	ed, ok := b.platforms[d.to.Platform].(Editor)
	if !ok || len(ids) != 1 || (!remove && strings.ContainsAny(text, "\n\r")) {
		return false
	}
	_, canDelete := b.deleter(d.to.Platform)
	lines, ok := b.store.Recombine(d.op.room, d.to.Key(), ids[0], key, text, remove)
	if !ok {
		return false
	}
	if len(lines) == 0 {
		if !canDelete {
			return false
		}
		b.erase(d.to, ids)
		return true
	}
	m := Message{Kind: KindRelay, Lines: make([]Line, len(lines))}
	for i, l := range lines {
		m.Lines[i] = Line{From: l.Nick, Text: l.Text}
	}
	if lim := b.platforms[d.to.Platform].Limits(); lim.MaxText > 0 && lim.Len(m.String()) > lim.MaxText-lim.Overhead {
		return false
	}
	if err := b.retry(func() error { return ed.EditText(b.sendCtx, d.to, MessageID(ids[0]), m) }); err != nil {
		b.log.Info("combined send not re-rendered", "platform", d.to.Platform, "err", err)
		// A platform that refuses to re-render it (the web page cannot yet) gets the fallback.
		return !errors.Is(err, ErrRejected)
	}
	return true
}
