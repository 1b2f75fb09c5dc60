package bridge

import (
	"fmt"
	"strings"
	"time"
)

// Coalescing. The platforms cap how many messages the bot may send (about one a second into one
// Telegram chat, five per five seconds into a Discord DM), not how many words: when several relayed
// messages wait for one recipient, the next send carries as many of them as fit the platform's limits,
// in order, each behind its own sender's pseudonym (Message.Lines). Only relayed words are combined:
// a notice, a reply or an invoice always goes alone, so no member's text can ever sit inside what the
// bot says itself. With nothing waiting, a message goes alone and at once: coalescing adds no delay,
// it only uses the waits the platform imposes anyway.

// maxLines bounds the messages one combined send carries, whatever the platform's length limit, so
// that one send stays readable and one failure concerns a bounded number of messages.
const maxLines = 50

// coalescable says whether d may share a send with other relayed messages: plain relayed text of one
// line that was not split (a split piece already fills a message), with no picture, no media file
// (a photo's caption stays with its photo) and no code block. A text of several lines goes alone, in the quote adapters set it in under its sender's name:
// inside a combined send, a quote could run on over the lines of the members after it.
func coalescable(d delivery) bool {
	return d.op == nil && d.msg.Kind == KindRelay && d.img == nil && d.media == nil && d.msg.Code == "" && d.msg.Parts <= 1 &&
		len(d.msg.Lines) == 0 && len(d.carried) == 0 && !strings.ContainsAny(d.msg.Text, "\n\r") &&
		// A reply goes alone: it is a native reply to one message, or carries the quote of one.
		d.replyTo == "" && d.msg.Quote == "" && d.msg.ReplyTo == ""
}

// urgentDelivery is what overtakes a recipient's relayed backlog: the bot answering the person
// (command results, invoices). Notices keep their place among relayed messages, so that "X left"
// never arrives before X's last words.
func urgentDelivery(d delivery) bool {
	// An edit, unsend or reaction (op) keeps its place: it must come after the message it acts on.
	return d.wipe == nil && d.op == nil && (d.msg.Kind == KindReply || d.msg.Kind == KindInvoice)
}

// take is the outbox's batching hook: how many of a recipient's waiting deliveries (at least the
// first) the next send carries. It runs under the outbox's lock, so it only measures.
func (b *Bridge) take(waiting []delivery) int {
	if b.cfg.SendAlone || len(waiting) < 2 || !coalescable(waiting[0]) {
		return 1
	}
	lim := Limits{}
	if p, ok := b.platforms[waiting[0].to.Platform]; ok {
		lim = p.Limits()
	}
	if lim.SendsAlone {
		return 1
	}
	budget := -1 // no length limit: only maxLines bounds the send
	if lim.MaxText > 0 {
		budget = lim.MaxText - lim.Overhead
	}
	used, n := 0, 0
	for _, d := range waiting[:min(len(waiting), maxLines)] {
		if !coalescable(d) {
			break
		}
		cost := lim.Len(d.msg.From+": "+d.msg.Text) + lim.LineOverhead
		if n > 0 {
			cost += lim.Len("\n")
		}
		if budget >= 0 && used+cost > budget && n > 0 {
			break
		}
		used += cost
		n++
	}
	return max(n, 1)
}

// combine makes one delivery of several coalescable ones, oldest first. The result remembers what
// it carries, so that every carried message is counted, observed, reported if it fails, and given
// the combined send's id (shown) on its own account.
func combine(batch []delivery) delivery {
	if len(batch) == 1 {
		return batch[0]
	}
	lines := make([]Line, len(batch))
	for i, d := range batch {
		lines[i] = Line{From: d.msg.From, Text: d.msg.Text}
	}
	return delivery{
		to:      batch[0].to,
		msg:     Message{Kind: KindRelay, Lines: lines},
		queued:  batch[0].queued,
		carried: batch,
	}
}

// each is every message a delivery stands for: itself, or what a combined send carries.
func (d delivery) each() []delivery {
	if len(d.carried) > 0 {
		return d.carried
	}
	return []delivery{d}
}

// deliverBatch is the outbox's work: one send for whatever the take hook gave it, ranked for the
// platform's bot-wide budget (fairshare.go) by whether the recipient has a backlog.
func (b *Bridge) deliverBatch(key string, batch []delivery, behind int) {
	if len(batch) > 1 {
		// What a member's wipe already made moot stays out of the combination (deliver drops a
		// single one the same way).
		kept := batch[:0]
		for _, d := range batch {
			if d.trace.Room == "" || b.store.Tracing(d.trace) {
				kept = append(kept, d)
			}
		}
		if batch = kept; len(batch) == 0 {
			return
		}
	}
	d := combine(batch)
	switch {
	case urgentDelivery(d):
		d.class = SendUrgent
	case behind > 0 || len(batch) > 1:
		d.class = SendBacklog
	default:
		d.class = SendFresh
	}
	b.deliver(key, d)
}

// Honest back-pressure: when even combined sends cannot keep up (a room busier than the platform
// lets the bot deliver to one of its members), the authors of what waits are told, at most once per
// delayNoticeEvery each, long before the recipient's queue could fill and a delivery fail.
const delayNoticeEvery = time.Minute

// backPressure looks at the queue d just joined: head is its oldest waiting message and waiting how
// many it holds.
func (b *Bridge) backPressure(d, head delivery, waiting int) {
	if d.sender == "" {
		return
	}
	late := b.now().Sub(head.queued) >= b.cfg.DelayWarning
	if !late && waiting < outboxLimit/4 {
		return
	}
	if b.ephemeral.Add("delayed:"+d.sender, true, delayNoticeEvery) != nil {
		return // told already
	}
	_, author, err := b.store.RoomOf(d.sender)
	if err != nil {
		return
	}
	b.log.Info("relay falling behind", "platform", d.to.Platform, "waiting", waiting)
	b.send(addrOf(author), Message{Kind: KindReply, Text: fmt.Sprintf(
		"⚠️ Your messages are delayed: the room is busier than %s lets kumo deliver. They will still arrive, in order.",
		platformTitle(d.to.Platform))}, nil, "")
}

// platformTitle is a platform's name as people write it.
func platformTitle(name string) string {
	switch name {
	case "web":
		return "the web chat"
	case "":
		return "the platform"
	}
	return strings.ToUpper(name[:1]) + name[1:]
}
