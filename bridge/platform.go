package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Addr is where one person is reached: their private chat with the bot on one platform.
// User and Chat are platform identifiers; they never leave the bridge towards other members.
type Addr struct {
	Platform string // the adapter's Name(): "telegram", "discord", "matrix", "web"
	User     string // the platform's stable user id
	Chat     string // the DM chat the bot writes to this user in
}

// Key identifies the person (not the chat): one platform user is one member, whatever DM they use.
func (a Addr) Key() string { return a.Platform + "\x1f" + a.User }

// MessageID is a platform's id of one message in one chat, in whatever form its adapter chose. The
// bridge never parses it: it keeps it with the room (in memory, gone with the room) and hands it back
// to the same adapter, so that an optional ability (deleting, editing, replying) can act on it.
type MessageID string

// Inbound is one thing a person sent the bot in their DM.
type Inbound struct {
	From Addr
	Text string
	// NonText is set for what kumo cannot relay (a location, a Discord sticker, media an adapter
	// cannot fetch): the bridge says so. Media it can relay comes as Attachments instead.
	NonText bool
	// ID is the platform's id of the person's own message ("" when the platform gives none).
	ID MessageID
	// Origin groups people whose identities cost nothing to make: the web visitor's network (their
	// IP address, an IPv6 /64), a Matrix user's homeserver. Limits that a fresh identity must not
	// reset (failed password guesses, unpaid invoices) count per Origin as well as per person. Empty
	// where an identity is the only source there is (Telegram, Discord accounts).
	Origin string
	// ReplyTo is the id of the message in the person's chat that this one replies to (their own,
	// or kumo's copy of someone's); "" when it is no reply.
	ReplyTo MessageID
	// Action is what the person did; the zero value is a new message. For the others Target is the
	// id of the message it acts on in their chat: for ActionEdit their own message, whose new text
	// is Text; for ActionUnsend their own message, which they deleted; for ActionReact and
	// ActionUnreact any message of the room in their chat, and Emoji the reaction put or taken off.
	Action Action
	Target MessageID
	Emoji  string
	// Left says the person is gone for good on their platform, with nothing else to say: the web
	// visitor's page closed and its resume grace ended. The bridge takes them out of their room and
	// tells the others, as it does when a send fails with ErrRecipientGone, but at once rather than
	// at the next message to them. Text and NonText are ignored; it is handled in the person's
	// order, after what they sent before, and never refused by the flood limit.
	Left bool
	// Attachments are the photos, files, voice notes... of the message (most platforms send one per
	// message); Text is then their caption. The bridge relays them when it can and says so when it
	// cannot. See media.go.
	Attachments []Attachment
}

// Action is what an Inbound does.
type Action int

const (
	// ActionPost is a new message (a reply when ReplyTo is set).
	ActionPost Action = iota
	// ActionEdit is a new text for the person's message Target.
	ActionEdit
	// ActionUnsend says the person deleted their message Target.
	ActionUnsend
	// ActionReact and ActionUnreact put Emoji on the message Target and take it off.
	ActionReact
	ActionUnreact
)

// Kind says who speaks in a Message, so each adapter can render it unmistakably: a member can never
// make their words look like the bot's or like another member's.
type Kind int

const (
	// KindReply is the bot answering the person it is talking to (command results, help).
	KindReply Kind = iota
	// KindNotice is a room event: someone joined, left or was renamed, the room is ending or ended.
	KindNotice
	// KindRelay is a member's words; From holds their pseudonym and Text their text, verbatim.
	KindRelay
	// KindInvoice is a payment request; Invoice is set and Text is a short caption.
	KindInvoice
)

func (k Kind) String() string {
	switch k {
	case KindReply:
		return "reply"
	case KindNotice:
		return "notice"
	case KindRelay:
		return "relay"
	case KindInvoice:
		return "invoice"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Message is what the bridge asks an adapter to show one person. Text is plain text: adapters escape
// it for whatever markup they send, so nothing in it ever becomes formatting, a mention or a link.
type Message struct {
	Kind Kind
	From string // KindRelay: the sender's pseudonym
	Text string
	// Code, when set, is shown after Text in a copyable (monospace) form: a password, a BOLT11 string.
	Code string
	// Invoice is set for KindInvoice.
	Invoice *Invoice
	// Room, when set, is the recipient's room as of this message, for adapters with a user interface
	// of their own (the web page shows a countdown); text messengers can ignore it.
	Room *RoomState
	// Part and Parts number the pieces of a text that was too long for the platform (1-based; Parts is
	// 0 or 1 when the text was not split).
	Part, Parts int
	// ReplyTo, for a reply, is the recipient's own copy of the message replied to (their message or
	// kumo's copy of it in their chat): an adapter shows a native reply to it where its platform has
	// replies. Quote is the fallback, a short plain text such as "↩ Quiet Fox: first words…" naming
	// the original by its pseudonym: the bridge sets it on every reply, and an adapter shows it
	// (set apart from the text, escaped like it) when ReplyTo is empty (the recipient has no copy:
	// it was wiped, or they joined later) or when it cannot reply natively. Neither ever names whose
	// platform message the original was.
	ReplyTo MessageID
	Quote   string
	// Lines, when set, makes a KindRelay message a combined send: several members' messages that were
	// waiting for this recipient, oldest first, each to be shown behind its own sender's pseudonym
	// exactly as a relay of its own would be (From and Text are then empty). The bridge combines only
	// relayed texts of one line, never a notice, a reply or an invoice, and only when a backlog makes one send
	// per message too slow; the whole fits Limits (MaxText, Overhead, LineOverhead per line).
	// The one id a combined send returns stands for every message it carries (the conversation map
	// marks it combined, and keeps each line's message, pseudonym and text): a reply or reaction on
	// it goes to the last of them, and an edit or unsend of one of them re-renders it in place
	// (Editor.EditText with the updated Lines: the edited line's new text, the unsent line gone;
	// deleted when no line is left), so an adapter's EditText renders Lines exactly as SendText
	// does, or refuses with ErrRejected. Where the platform has no Editor or refuses, where the new
	// text has several lines or no longer fits, or where the map no longer knows the send whole (a
	// message it carried was forgotten past rooms.max_mapped), it stays as it is: the edit arrives
	// as a marked reply, the unsend as a notice.
	Lines []Line
}

// Line is one member's message inside a combined send.
type Line struct {
	From string // the sender's pseudonym
	Text string // their text, verbatim
}

// String renders the message as plain text, for adapters without markup and for tests. Relayed
// text always stands behind its sender's pseudonym; notices carry a marker a pseudonym cannot.
func (m Message) String() string {
	var s string
	switch {
	case m.Kind == KindRelay && len(m.Lines) > 0:
		parts := make([]string, len(m.Lines))
		for i, l := range m.Lines {
			parts[i] = l.From + ": " + l.Text
		}
		s = strings.Join(parts, "\n")
	case m.Kind == KindRelay:
		s = m.From + ": " + m.Text
	case m.Kind == KindNotice:
		s = NoticeMark + m.Text
	default:
		s = m.Text
	}
	if m.Code != "" {
		if s != "" {
			s += "\n"
		}
		s += m.Code
	}
	if m.Quote != "" && m.ReplyTo == "" {
		s = m.Quote + "\n" + s
	}
	return s
}

// RoomState is what a member may know of their room.
type RoomState struct {
	EndsAt  time.Time
	Members int
	Nick    string // the recipient's own pseudonym
	// Creator says the recipient created the room (or reclaimed it): they may destroy it.
	Creator bool
	// Closed says the recipient is in no room any more (they left, or it ended).
	Closed bool
}

// NoticeMark starts every plain-text notice. Pseudonyms are not allowed to start with it.
const NoticeMark = "🔔 "

// Image is a picture to send with a caption (the invoice QR code).
type Image struct {
	Name string // file name, e.g. "invoice.png"
	PNG  []byte
}

// Limits is what one platform accepts in a single outgoing message; the bridge splits longer texts.
type Limits struct {
	// MaxText is the longest text one message may carry, measured with TextLen, including the
	// sender's pseudonym and ": " for relayed text and whatever the adapter adds around them (Overhead).
	MaxText int
	// Overhead is how much the adapter's own rendering adds to every message (markup around the
	// pseudonym, a part counter...), in TextLen units.
	Overhead int
	// LineOverhead is what rendering adds to each line of a combined send (Message.Lines) beyond
	// "pseudonym: text" and the newline between lines: the markup around each pseudonym.
	LineOverhead int
	// SendsAlone says the platform lets the bot send as often as it likes (kumo's own web page):
	// combining a backlog into one send would save nothing there, so every message goes alone and
	// edits, unsends and reactions always act on a message of its own.
	SendsAlone bool
	// TextLen measures text the way the platform counts it, after the adapter's escaping. It must be
	// additive: TextLen(a+b) == TextLen(a)+TextLen(b) for any split on a grapheme boundary. Nil means
	// UTF-16 code units, which is how Telegram counts and is never less than Discord's count.
	TextLen func(string) int
}

// Len measures s with the platform's TextLen.
func (l Limits) Len(s string) int {
	if l.TextLen != nil {
		return l.TextLen(s)
	}
	return UTF16Len(s)
}

// UTF16Len is the length of s in UTF-16 code units.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		if r == utf8.RuneError {
			n++
			continue
		}
		n += utf16.RuneLen(r)
	}
	return n
}

// Handler receives what people send the bot. HandleInbound returns quickly (the bridge queues the
// work per sender and keeps each sender's order), so an adapter may call it from one loop.
type Handler interface {
	HandleInbound(ctx context.Context, in Inbound)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, in Inbound)

// HandleInbound calls f.
func (f HandlerFunc) HandleInbound(ctx context.Context, in Inbound) { f(ctx, in) }

// Platform is one messenger, seen from the bridge. Adapters translate and nothing else: no room logic.
//
// Send errors tell the bridge what to do next: wrap ErrRecipientGone when the person can no longer be
// reached (blocked the bot, closed their DMs, left the DM), return a *RateLimitError when the platform
// said to wait, wrap ErrRejected when resending the same message can never work. Anything else is
// treated as transient and retried with backoff. Adapters pace themselves under the platform's limits;
// the bridge owns retries so that per-recipient order is kept in one place.
type Platform interface {
	// Name is the platform's short name, used in Addr.Platform and metrics.
	Name() string
	// Limits is what one outgoing message may hold.
	Limits() Limits
	// Run receives messages and hands them to h until ctx ends. It returns nil when ctx ended and an
	// error when the platform cannot be used: one wrapping ErrUnauthorized for rejected credentials,
	// any other for what may pass (unreachable), after which the bridge calls Run again with backoff.
	// h also implements ReadyNotifier: call Ready once connected.
	Run(ctx context.Context, h Handler) error
	// SendText shows m to the person at to. The bridge has already split m to fit Limits. It returns
	// the id of the message it created, which the bridge may later hand to an optional ability
	// (Deleter...) of the same adapter; "" when the platform gives none.
	SendText(ctx context.Context, to Addr, m Message) (MessageID, error)
	// SendImage shows img with m as its caption. It returns the ids of every message it created (an
	// adapter may need two: a picture and its caption). Ids of what went out are returned even when
	// a later part failed, so that nothing kumo showed escapes the room's wipe.
	SendImage(ctx context.Context, to Addr, img Image, m Message) ([]MessageID, error)
}

// Optional abilities. An adapter implements one when its platform can do it; the bridge finds it
// with a type assertion and falls back when it is missing (mautrix bridgev2's optional NetworkAPI
// interfaces, caddy's optional Provisioner). Later abilities (editing, replying, reacting, media) join
// them the same way, each its own small interface, so that an adapter that lacks one still works.

// Deleter is a platform that lets the bot delete messages in a person's DM: what the room's wipe,
// /leave and unsend use. Its errors mean what they mean for sends: a *RateLimitError asks to call
// again with the same ids after the wait, ErrRejected says these ids can never be deleted (too old),
// ErrRecipientGone that the chat is gone; anything else is transient.
type Deleter interface {
	// DeleteBatch is how many ids one DeleteMessages call takes: 100 on Telegram (deleteMessages), 1
	// where every deletion is its own request.
	DeleteBatch() int
	// DeletesTheirs says whether the bot may delete the person's own messages in the chat at to
	// (Telegram private chats: yes; Discord DMs: never, and trying counts against the bot; Matrix:
	// when the bot's power level allows redacting them). The bridge keeps the ids of a person's own
	// messages only where this holds.
	DeletesTheirs(ctx context.Context, to Addr) bool
	// DeleteMessages deletes ids (at most DeleteBatch of them) from the chat at to. An id whose message
	// is already gone counts as deleted, so a retried call is harmless.
	DeleteMessages(ctx context.Context, to Addr, ids []MessageID) error
}

// Editor is a platform that lets the bot edit the text of a message it sent: what relays an author's
// edit to every copy. m is the piece as the bridge would send it now (Part and Parts set when the
// text is split). Errors mean what they mean for sends; a text the platform finds unchanged is no
// error.
type Editor interface {
	EditText(ctx context.Context, to Addr, id MessageID, m Message) error
}

// Reacter is a platform that lets the bot show emoji reactions on messages in a person's DM (kumo's
// own and the person's). The bridge keeps who reacted with what and asks for the whole set each time,
// so a retry or a reordering cannot leave a stale reaction; what a Reacter cannot show arrives as a
// short notice instead.
type Reacter interface {
	// MaxReactions is how many emoji the bot may show on one message (Telegram bots: 1).
	MaxReactions() int
	// CanReact says whether emoji is a reaction the platform accepts from a bot (Telegram allows a
	// fixed list).
	CanReact(emoji string) bool
	// SetReactions makes the bot's reactions on message id exactly emojis (at most MaxReactions,
	// each CanReact; none removes them).
	SetReactions(ctx context.Context, to Addr, id MessageID, emojis []string) error
}

// Inviter is a platform that can bring a person to the bot carrying a room's join token: a link
// that hands the token over by itself (Telegram's t.me deep link, the web page's #join= fragment),
// or one that opens a chat with the bot plus what to send there (Matrix, Discord). The text returned
// is shown as it is in /invite's answer; ok is false when the adapter cannot make one (yet).
type Inviter interface {
	InviteLink(token string) (text string, ok bool)
}

var (
	// ErrRecipientGone means the person cannot be reached any more: the bridge removes them from
	// their room and tells the others.
	ErrRecipientGone = errors.New("recipient cannot be reached")
	// ErrRejected means the platform refused this message for good; resending it cannot help.
	ErrRejected = errors.New("message rejected by the platform")
	// ErrUnauthorized, from Run, means the platform refused kumo's credentials (a mistyped or revoked
	// token): retrying cannot help, so kumo stops and says what to fix. Any other Run error is retried.
	ErrUnauthorized = errors.New("the platform rejected kumo's credentials")
)

// RateLimitError is a platform's "too many requests, retry after".
type RateLimitError struct {
	RetryAfter time.Duration
	Err        error // the platform's own error, if any
}

func (e *RateLimitError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("rate limited, retry after %s: %v", e.RetryAfter, e.Err)
	}
	return fmt.Sprintf("rate limited, retry after %s", e.RetryAfter)
}

func (e *RateLimitError) Unwrap() error { return e.Err }
