package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/kumo-chat/kumo/rooms"
)

// The wipe: when a room ends, or a member leaves it, everything kumo showed them about it (and
// their own messages, where the platform lets the bot delete them) is deleted from their chat,
// followed by one short final notice. The message ids are recorded as deliveries go out (shown) in
// the room's record (rooms.Trace); the wipe runs in the member's own delivery lane, so that it comes
// after every message that lane still had to send, and the final notice after the wipe.

// wipeJob is a delivery that erases a trace instead of sending.
type wipeJob struct {
	trace rooms.Trace
	// why starts the final notice ("💥 This room has self-destructed."); "" sends none (an unpaid
	// invoice is wiped silently, before the reply that says it expired).
	why string
}

// deleter is the platform's Deleter, if it has one.
func (b *Bridge) deleter(platform string) (Deleter, bool) {
	d, ok := b.platforms[platform].(Deleter)
	return d, ok
}

// traceOf is the trace of a message kumo shows the person at to now: their room's, if they are in
// one; nil otherwise.
func (b *Bridge) traceOf(to Addr) rooms.Trace {
	if !b.cfg.Wipe {
		return rooms.Trace{}
	}
	room, _, err := b.store.RoomOf(to.Key())
	if err != nil {
		return rooms.Trace{}
	}
	return rooms.Trace{Room: room.ID, Member: to.Key()}
}

func (b *Bridge) roomTrace(roomID string, to Addr) rooms.Trace {
	if !b.cfg.Wipe {
		return rooms.Trace{}
	}
	return rooms.Trace{Room: roomID, Member: to.Key()}
}

// keepOwn records the person's own message in t, where the platform lets the bot delete it.
func (b *Bridge) keepOwn(ctx context.Context, in Inbound, t rooms.Trace) {
	if !b.cfg.Wipe || in.ID == "" || t.Member == "" {
		return
	}
	d, ok := b.deleter(in.From.Platform)
	if !ok || !d.DeletesTheirs(ctx, in.From) {
		return
	}
	if n := b.store.Keep(t, string(in.ID)); n > 0 {
		b.stats.refsDropped.Add(uint64(n))
	}
}

// keepOwnAfter records the message of someone who was in no room in whatever it started: the room
// they joined or opened, or their pending purchase (/newroom with its password).
func (b *Bridge) keepOwnAfter(ctx context.Context, in Inbound) {
	if !b.cfg.Wipe || in.ID == "" {
		return
	}
	if room, me, err := b.store.RoomOf(in.From.Key()); err == nil {
		b.keepOwn(ctx, in, rooms.Trace{Room: room.ID, Member: me.Key()})
		return
	}
	if _, ok := b.store.PurchaseOf(in.From.Key()); ok {
		b.keepOwn(ctx, in, rooms.Pending(in.From.Key()))
	}
}

// wipePending erases what a purchase that will never open a room showed (its invoice) and the
// /newroom message that started it.
func (b *Bridge) wipePending(to Addr) {
	if b.cfg.Wipe {
		b.wipeChat(to, rooms.Pending(to.Key()), "")
	}
}

// shown learns which platform messages a delivery created, even one that then failed in part, and
// records them for the wipe.
func (b *Bridge) shown(d delivery, ids []MessageID) {
	if d.trace.Member == "" || len(ids) == 0 {
		return
	}
	if _, ok := b.deleter(d.to.Platform); !ok {
		return
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	if n := b.store.Keep(d.trace, s...); n > 0 {
		b.stats.refsDropped.Add(uint64(n))
	}
}

// wipeChat queues the wipe of one trace in the member's lane, behind what they are still due.
func (b *Bridge) wipeChat(to Addr, t rooms.Trace, why string) {
	b.outbox.pushAlways(to.Platform+"\x1f"+to.Chat, delivery{to: to, wipe: &wipeJob{trace: t, why: why}, queued: b.now()})
}

// wipe runs in the member's lane: it erases their trace, then sends the final notice.
func (b *Bridge) wipe(key string, d delivery) {
	ids := b.store.TakeRefs(d.wipe.trace)
	b.wipeInFlight.Add(int64(len(ids)))
	erased, failed := b.erase(d.to, ids)
	b.wipeInFlight.Add(-int64(len(ids)))
	b.stats.erased.Add(uint64(erased))
	b.stats.eraseFailed.Add(uint64(failed))
	if failed > 0 {
		b.log.Warn("wipe incomplete", "platform", d.to.Platform, "erased", erased, "not_erased", failed)
	}
	if d.wipe.why == "" {
		return
	}
	text := b.finalNotice(d.to, d.wipe.why, erased, failed)
	for _, m := range b.splitFor(d.to.Platform, Message{Kind: KindNotice, Text: text, Room: closedState}) {
		b.deliver(key, delivery{to: d.to, msg: m, queued: b.now()})
	}
}

// erase deletes ids from the chat at to in the platform's batches: a platform's "wait" is waited out
// and the same batch tried again (no deletion is lost to a 429), other errors are retried with
// backoff, and ErrRejected or ErrRecipientGone give the batch (or the chat) up.
func (b *Bridge) erase(to Addr, ids []string) (erased, failed int) {
	if len(ids) == 0 {
		return 0, 0
	}
	del, ok := b.deleter(to.Platform)
	if !ok {
		return 0, len(ids)
	}
	size := max(del.DeleteBatch(), 1)
	pol := b.cfg.Retry
	for start := 0; start < len(ids); start += size {
		batch := make([]MessageID, 0, size)
		for _, id := range ids[start:min(start+size, len(ids))] {
			batch = append(batch, MessageID(id))
		}
		backoff := pol.Backoff
		for attempt := 1; ; attempt++ {
			if b.sendCtx.Err() != nil {
				return erased, len(ids) - erased
			}
			err := del.DeleteMessages(b.sendCtx, to, batch)
			var rl *RateLimitError
			switch {
			case err == nil:
				erased += len(batch)
			case errors.Is(err, ErrRecipientGone):
				return erased, len(ids) - erased
			case errors.Is(err, ErrRejected):
				failed += len(batch)
			case errors.As(err, &rl):
				if !b.sleep(rl.RetryAfter) {
					return erased, len(ids) - erased
				}
				attempt--
				continue
			default:
				if attempt >= pol.Attempts || !b.sleep(backoff) {
					failed += len(batch)
					break
				}
				backoff = min(backoff*2, pol.MaxBackoff)
				continue
			}
			break
		}
	}
	return erased, failed
}

// finalNotice is the one message a member's chat keeps of the room.
func (b *Bridge) finalNotice(to Addr, why string, erased, failed int) string {
	s := why
	del, ok := b.deleter(to.Platform)
	if !ok {
		return s + " This messenger does not let kumo erase messages: the conversation stays in this chat unless you delete it."
	}
	s += fmt.Sprintf(" %s erased from this chat.", plural(erased, "message was", "messages were"))
	if failed > 0 {
		s += fmt.Sprintf(" %s could not be erased.", plural(failed, "message", "messages"))
	}
	if !del.DeletesTheirs(b.sendCtx, to) {
		s += " Your own messages remain in this chat unless you delete them."
	}
	return s
}

// ownStayNote tells a member, once, as they enter a room, what its end will not erase.
func (b *Bridge) ownStayNote(to Addr) string {
	if !b.cfg.Wipe {
		return ""
	}
	del, ok := b.deleter(to.Platform)
	switch {
	case !ok:
		return "\nThis messenger does not let kumo erase messages: when the room ends, its conversation stays in this chat unless you delete it."
	case !del.DeletesTheirs(b.sendCtx, to):
		return "\nWhen the room ends kumo erases its messages here, but this messenger does not let it erase yours: they stay in this chat unless you delete them."
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// closingWhy is how the final notice starts for a room that closed.
func closingWhy(why rooms.Reason) string {
	switch why {
	case rooms.Destroyed:
		return "💥 The creator destroyed this room; nothing you send is relayed any more."
	case rooms.Shutdown:
		return "💥 kumo is shutting down, so this room is gone; nothing you send is relayed any more."
	}
	return "💥 This room has self-destructed; nothing you send is relayed any more."
}
