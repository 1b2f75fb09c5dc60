package web

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/kumo-chat/kumo/bridge"
)

// event is one thing the server tells the page, as JSON over the WebSocket.
type event struct {
	// Seq numbers the bridge's messages to one visitor (1, 2, ...), so a page that reconnects can skip
	// what it already shows. Control events (hello, error) have none.
	Seq  uint64 `json:"seq,omitempty"`
	Type string `json:"type"` // "hello", "msg", "delete", "edit", "react", "error"

	// type "msg": a bridge.Message.
	Kind string `json:"kind,omitempty"` // bridge.Kind's String(): relay, notice, reply, invoice
	From string `json:"from,omitempty"`
	Text string `json:"text,omitempty"`
	Code string `json:"code,omitempty"`
	Part int    `json:"part,omitempty"`
	// Lines is a combined send (bridge.Message.Lines): the page shows one bubble per line, all with
	// the event's Seq, so that whatever later acts on the send acts on every line of it.
	Lines   []lineJSON   `json:"lines,omitempty"`
	Parts   int          `json:"parts,omitempty"`
	Invoice *invoiceJSON `json:"invoice,omitempty"`
	Image   string       `json:"image,omitempty"` // data: URL of a PNG sent with the message
	Media   *mediaJSON   `json:"media,omitempty"` // a file sent with the message (media.go)
	Room    *roomJSON    `json:"room,omitempty"`  // the visitor's room as of this message
	// ReplyTo is the page's id of the message this one replies to (a seq, or "o3" for the
	// visitor's own line); Quote the short quote that stands in when the page has none.
	ReplyTo string `json:"replyTo,omitempty"`
	Quote   string `json:"quote,omitempty"`

	// type "edit" (From, Text, Part, Parts as for "msg") and "react": the message they act on.
	Target    string   `json:"target,omitempty"`
	Reactions []string `json:"reactions,omitempty"` // "react": the others' reactions on it now

	// type "hello": the session as the page must remember it (in memory only).
	Token    string `json:"token,omitempty"`
	Resumed  bool   `json:"resumed,omitempty"`
	Simulate bool   `json:"simulate,omitempty"` // simulated payments are available
	MaxText  int    `json:"maxText,omitempty"`

	// type "error": why what the page sent was refused.
	Error string `json:"error,omitempty"`

	// IDs are, for "delete", the messages the page must remove: kumo's by seq ("12"), the
	// visitor's own lines by the id the page gave them ("o3").
	IDs []string `json:"ids,omitempty"`

	// Now is the server's clock (Unix ms) for countdowns, so a visitor's wrong clock does not matter.
	Now int64 `json:"now,omitempty"`
}

type roomJSON struct {
	EndsAt  int64  `json:"endsAt,omitempty"` // Unix ms
	Members int    `json:"members,omitempty"`
	Nick    string `json:"nick,omitempty"`
	Closed  bool   `json:"closed,omitempty"`
	Creator bool   `json:"creator,omitempty"` // the visitor may destroy the room
}

type invoiceJSON struct {
	ID        string `json:"id"`
	BOLT11    string `json:"bolt11"`
	URI       string `json:"uri"`
	AmountSat int64  `json:"amountSat"`
	ExpiresAt int64  `json:"expiresAt"` // Unix ms
	QR        string `json:"qr,omitempty"`
	Dev       bool   `json:"dev,omitempty"`
	// Simulate: the page may offer to pay it with the development backend.
	Simulate bool `json:"simulate,omitempty"`
}

func toEvent(m bridge.Message, png []byte, simulate bool) event {
	ev := event{
		Type:    "msg",
		Kind:    m.Kind.String(),
		From:    m.From,
		Text:    m.Text,
		Code:    m.Code,
		Part:    m.Part,
		Parts:   m.Parts,
		ReplyTo: string(m.ReplyTo),
		Quote:   m.Quote,
		Now:     time.Now().UnixMilli(),
	}
	for _, l := range m.Lines {
		ev.Lines = append(ev.Lines, lineJSON{From: l.From, Text: l.Text})
	}
	if r := m.Room; r != nil {
		ev.Room = &roomJSON{Members: r.Members, Nick: r.Nick, Closed: r.Closed, Creator: r.Creator}
		if !r.EndsAt.IsZero() {
			ev.Room.EndsAt = r.EndsAt.UnixMilli()
		}
	}
	if inv := m.Invoice; inv != nil {
		qr := inv.QR
		if len(qr) == 0 {
			qr = png
		}
		ev.Invoice = &invoiceJSON{
			ID:        inv.ID,
			BOLT11:    inv.BOLT11,
			URI:       inv.URI,
			AmountSat: inv.AmountSat,
			ExpiresAt: inv.ExpiresAt.UnixMilli(),
			QR:        pngURL(qr),
			Dev:       inv.Dev,
			Simulate:  simulate && inv.Dev,
		}
	} else if len(png) > 0 {
		ev.Image = pngURL(png)
	}
	return ev
}

// lineJSON is one member's message in a combined send.
type lineJSON struct {
	From string `json:"from"`
	Text string `json:"text"`
}

func pngURL(png []byte) string {
	if len(png) == 0 {
		return ""
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
}

// session is one visitor: what waits to be shown to them and which connection shows it.
//
// Events stay in buf after they are written, until the page confirms them by resuming with a later
// Seq or until keepWritten newer ones were written: a write into a connection that just died succeeds
// locally and is lost, so a resumed connection replays what the page says it lacks.
type session struct {
	id    string // bridge.Addr.User and Chat
	token string // lets the same page reconnect; never leaves that page

	mu       sync.Mutex
	buf      []event
	next     int // buf[next:] is not written yet on the current connection
	seq      uint64
	gen      uint64        // connections attached so far
	attached bool          // a connection (generation gen) is serving the session
	kick     chan struct{} // closed to make the attached connection give way to a newer one
	gone     bool
	invoices map[string]bool // invoices shown to this visitor: the only ones they may simulate paying
	wake     chan struct{}   // has a value when buf grew
}

// keepWritten is how many written events are kept for a page that reconnects.
const keepWritten = 64

func newSession(id, token string) *session {
	return &session{
		id:       id,
		token:    token,
		invoices: make(map[string]bool),
		wake:     make(chan struct{}, 1),
	}
}

func (s *session) addr() bridge.Addr {
	return bridge.Addr{Platform: Name, User: s.id, Chat: s.id}
}

func (s *session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// enqueue queues ev for the page and returns the Seq it was given.
func (s *session) enqueue(ev event) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return 0, fmt.Errorf("web: visitor's page is closed: %w", bridge.ErrRecipientGone)
	}
	if len(s.buf)-s.next >= maxPending {
		// The page is not reading (or is away within its grace period): the bridge waits and retries.
		return 0, &bridge.RateLimitError{RetryAfter: time.Second}
	}
	s.seq++
	ev.Seq = s.seq
	if ev.Invoice != nil {
		s.invoices[ev.Invoice.ID] = true
	}
	if s.next > keepWritten {
		drop := s.next - keepWritten
		s.buf = append(s.buf[:0:0], s.buf[drop:]...)
		s.next -= drop
	}
	s.buf = append(s.buf, ev)
	s.signal()
	return ev.Seq, nil
}

// take hands connection gen's writer everything it has not written yet.
func (s *session) take(gen uint64) []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen || s.next == len(s.buf) {
		return nil
	}
	evs := append([]event(nil), s.buf[s.next:]...)
	s.next = len(s.buf)
	return evs
}

// attach makes a new connection the session's; an older one is told to give way. The page shows
// everything up to Seq last: the rest is written again.
func (s *session) attach(last uint64) (gen uint64, kick chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kick != nil {
		close(s.kick)
	}
	i := 0
	for i < len(s.buf) && s.buf[i].Seq <= last {
		i++
	}
	s.buf = append(s.buf[:0:0], s.buf[i:]...)
	s.next = 0
	s.gen++
	s.attached = true
	s.kick = make(chan struct{})
	return s.gen, s.kick
}

// detach reports whether connection gen was still the session's (and so a grace period starts).
func (s *session) detach(gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || !s.attached {
		return false
	}
	s.attached = false
	s.kick = nil
	return true
}

// expireIfIdleSince ends the session if no connection attached since connection gen left.
func (s *session) expireIfIdleSince(gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attached || s.gen != gen {
		return false
	}
	s.gone = true
	s.buf, s.next = nil, 0
	return true
}

// expire refuses further messages; what is pending is still flushed by an attached connection.
func (s *session) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = true
}

func (s *session) hasInvoice(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invoices[id]
}

// remove forgets the messages with these seqs, written or not (a page that reconnects must not get
// them again), and queues a "delete" event telling the page to remove ids. It returns the event's
// seq.
func (s *session) remove(ids []string) (uint64, error) {
	gone := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil {
			gone[n] = true
		}
	}
	s.mu.Lock()
	keep, written := s.buf[:0], s.next
	for i, ev := range s.buf {
		if ev.Type == "msg" && gone[ev.Seq] {
			if i < written {
				s.next--
			}
			continue
		}
		keep = append(keep, ev)
	}
	clear(s.buf[len(keep):]) // no text lingers in the backing array
	s.buf = keep
	s.mu.Unlock()
	return s.enqueueForce(event{Type: "delete", IDs: ids})
}

// enqueueForce is enqueue without the pending limit: a deletion must reach the page.
func (s *session) enqueueForce(ev event) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return 0, fmt.Errorf("web: visitor's page is closed: %w", bridge.ErrRecipientGone)
	}
	s.seq++
	ev.Seq = s.seq
	s.buf = append(s.buf, ev)
	s.signal()
	return ev.Seq, nil
}

// edit changes the text of message seq where the session still keeps it (a page that reconnects
// gets it edited) and queues an "edit" event for the page.
func (s *session) edit(seq string, m bridge.Message) error {
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return fmt.Errorf("web: %w: not a message of the page", bridge.ErrRejected)
	}
	if len(m.Lines) > 0 {
		// The page shows a combined send as one bubble per line and cannot re-render them yet:
		// refused, so the core falls back to a marked reply or a notice.
		return fmt.Errorf("web: %w: a combined send cannot be re-rendered on the page", bridge.ErrRejected)
	}
	s.mu.Lock()
	for i := range s.buf {
		if ev := &s.buf[i]; ev.Type == "msg" && ev.Seq == n {
			ev.From, ev.Text, ev.Part, ev.Parts = m.From, m.Text, m.Part, m.Parts
		}
	}
	s.mu.Unlock()
	_, err = s.enqueueForce(event{Type: "edit", Target: seq, From: m.From, Text: m.Text, Part: m.Part, Parts: m.Parts, Now: time.Now().UnixMilli()})
	return err
}
