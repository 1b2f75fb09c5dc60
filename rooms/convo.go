package rooms

import (
	"slices"
	"strings"
)

// The conversation map: for each relayed message, the ids of its copies in every member's chat (the
// author's own original among them), so that a reply, an edit, an unsend or a reaction made on any
// copy reaches every other copy. It lives in the room's record (refBook), under the record's lock,
// and goes when the room closes: an edit after the end finds nothing.
//
// Ids are the same strings the wipe's record keeps (refBook.add clones them once; both hold the
// same bytes). Besides ids it keeps, per message, its author's pseudonym and a short snippet of
// the text, which is what a reply or reaction shows where a recipient has no copy to point at.

// DefaultMaxMapped caps how many relayed messages one room maps (rooms.max_mapped). Past it the
// oldest is forgotten: replies to it fall back to a quote, edits and reactions on it are ignored.
// At ~1.1 KB a message mapped to 3 recipients (BenchmarkConvo, the wipe's record of the same ids
// included) a full room costs ~5.5 MB.
const DefaultMaxMapped = 5000

// SnippetLen is how many characters of a message the map keeps for quotes.
const SnippetLen = 40

// Said is one relayed message as the map knows it (a copy: changing it changes nothing).
type Said struct {
	Key     string // the message's key in the map: its author's member key and their own id
	Author  string // the author's member key
	Nick    string // the author's pseudonym when they said it
	Snippet string // the first SnippetLen characters of the text, for quotes
	// Copies are the ids of the message in each member's chat, by member key: the author's own
	// message, and kumo's copies (several when the text was split).
	Copies map[string][]string
	// Reactions are who reacted with what, in the order they did.
	Reactions []Reaction
	// Combined says, by member key, that the member's copy is a combined send carrying other
	// messages too: an edit or unsend re-renders it whole (Recombine) rather than editing or
	// deleting it as this message's alone.
	Combined map[string]bool
}

// Reaction is one member's emoji on a message.
type Reaction struct {
	Member, Emoji string
}

// Shown is what the member sees reacted on their copy: every emoji others put on it, once each,
// in the order first put.
func (s Said) Shown(member string) []string {
	var out []string
	for _, r := range s.Reactions {
		if r.Member != member && !slices.Contains(out, r.Emoji) {
			out = append(out, r.Emoji)
		}
	}
	return out
}

type said struct {
	author, nick, snippet string
	copies                map[string][]string
	reacts                []Reaction
	gone                  bool            // taken back: waiting for TakeCopies
	takers                int             // TakeCopies still due after Unsay (one per member)
	combined              map[string]bool // members whose copy carries other messages too
}

type convo struct {
	max    int
	msgs   map[string]*said
	order  []string          // message keys, oldest first
	byCopy map[string]string // member key \x1f id -> message key
	// combos are the combined sends (bridge Message.Lines) by member key \x1f id: what each line
	// carries, so that an edit or unsend of one of them re-renders the send in place. An entry
	// goes when any message it carries is forgotten (rooms.max_mapped), so they are bounded by it.
	combos map[string][]Line
}

// Line is one message in a member's combined send, as the map keeps it to re-render the send.
type Line struct {
	Key  string // the message's key in the map
	Nick string // its author's pseudonym
	Text string // its full text as shown
}

func newConvo(max int) *convo {
	return &convo{max: max, msgs: make(map[string]*said), byCopy: make(map[string]string), combos: make(map[string][]Line)}
}

func copyKey(member, id string) string { return member + "\x1f" + id }

// MsgKey is the map's key of the message id that member sent.
func MsgKey(member, id string) string { return member + "\x1e" + id }

func (s *said) view(key string) Said {
	c := make(map[string][]string, len(s.copies))
	for k, v := range s.copies {
		c[k] = slices.Clone(v)
	}
	var comb map[string]bool
	if len(s.combined) > 0 {
		comb = make(map[string]bool, len(s.combined))
		for k, v := range s.combined {
			comb[k] = v
		}
	}
	return Said{Key: key, Author: s.author, Nick: s.nick, Snippet: s.snippet, Copies: c, Reactions: slices.Clone(s.reacts), Combined: comb}
}

// Snippet cuts text to what the map keeps of it: its first SnippetLen characters of its first
// line, with "…" when there was more.
func Snippet(text string) string {
	text = strings.TrimSpace(text)
	more := false
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text, more = strings.TrimSpace(text[:i]), true
	}
	n := 0
	for i := range text {
		if n == SnippetLen {
			text, more = text[:i], true
			break
		}
		n++
	}
	if more {
		text = strings.TrimRight(text, " ") + "…"
	}
	return strings.Clone(text)
}

func (s *Store) maxMapped() int {
	if s.cfg.MaxMapped > 0 {
		return s.cfg.MaxMapped
	}
	return DefaultMaxMapped
}

// withConvo runs f on the room's map under its lock; false when the room has none (it closed).
func (s *Store) withConvo(roomID string, f func(c *convo, b *refBook)) bool {
	v, ok := s.c.Get(refsPrefix + roomID)
	if !ok {
		return false
	}
	b := v.(*refBook)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.convo == nil {
		return false
	}
	f(b.convo, b)
	return true
}

// Say maps a message the author (a member key) sent with their own id: its key, for recording its
// copies. The oldest message is forgotten past rooms.max_mapped. ok is false when the room closed.
func (s *Store) Say(roomID, author, id, nick, text string) (key string, ok bool) {
	key = MsgKey(author, id)
	ok = s.withConvo(roomID, func(c *convo, _ *refBook) {
		if _, dup := c.msgs[key]; dup {
			return
		}
		for len(c.order) >= c.max {
			c.forget(c.order[0])
		}
		id = strings.Clone(id)
		c.msgs[key] = &said{author: author, nick: nick, snippet: Snippet(text), copies: map[string][]string{author: {id}}}
		c.byCopy[copyKey(author, id)] = key
		c.order = append(c.order, key)
	})
	return key, ok
}

// forget drops a message. Callers hold the book's lock.
func (c *convo) forget(key string) *said {
	m, ok := c.msgs[key]
	if !ok {
		return nil
	}
	delete(c.msgs, key)
	for member, ids := range m.copies {
		for _, id := range ids {
			delete(c.byCopy, copyKey(member, id))
			// A combined send that carried it cannot be re-rendered whole any more.
			delete(c.combos, copyKey(member, id))
		}
	}
	if i := slices.Index(c.order, key); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
	}
	return m
}

// AddCopies records ids of the message key shown in the member's chat (in order, after what it
// already has).
func (s *Store) AddCopies(roomID, key, member string, ids ...string) {
	s.withConvo(roomID, func(c *convo, b *refBook) {
		m, ok := c.msgs[key]
		if !ok {
			return
		}
		for _, id := range ids {
			id = b.shared(member, id)
			m.copies[member] = append(m.copies[member], id)
			ck := copyKey(member, id)
			if other, ok := c.byCopy[ck]; ok && other != key {
				// One send carrying several messages (coalescing): a reply or reaction on it goes
				// to the last of them; none of them may edit or delete it.
				m.markCombined(member)
				if o := c.msgs[other]; o != nil {
					o.markCombined(member)
				}
			}
			c.byCopy[ck] = key
		}
	})
}

// SetCopies replaces the member's copies of the message key (an edit that changed how the text
// is split), and drops the ids no longer shown from the wipe's record too.
func (s *Store) SetCopies(roomID, key, member string, ids []string) {
	s.withConvo(roomID, func(c *convo, b *refBook) {
		m, ok := c.msgs[key]
		if !ok {
			return
		}
		for _, id := range m.copies[member] {
			if !slices.Contains(ids, id) {
				delete(c.byCopy, copyKey(member, id))
				b.drop(member, id)
			}
		}
		kept := make([]string, len(ids))
		for i, id := range ids {
			kept[i] = strings.Clone(id)
			c.byCopy[copyKey(member, kept[i])] = key
		}
		m.copies[member] = kept
	})
}

// Find is the message the member's chat shows as id (their own or kumo's copy of someone's).
func (s *Store) Find(roomID, member, id string) (Said, bool) {
	var out Said
	var found bool
	s.withConvo(roomID, func(c *convo, _ *refBook) {
		key, ok := c.byCopy[copyKey(member, id)]
		if !ok || c.msgs[key].gone {
			return
		}
		out, found = c.msgs[key].view(key), true
	})
	return out, found
}

// Edited updates the snippet of the message key after its author edited it.
func (s *Store) Edited(roomID, key, text string) (Said, bool) {
	var out Said
	var found bool
	s.withConvo(roomID, func(c *convo, _ *refBook) {
		m, ok := c.msgs[key]
		if !ok || m.gone {
			return
		}
		m.snippet = Snippet(text)
		out, found = m.view(key), true
	})
	return out, found
}

// Unsay marks the message key taken back by its author: it is found no more, and each member's
// copies wait for TakeCopies (in that member's delivery order, so that a copy still on its way is
// deleted too); the message is forgotten once takers calls (one per member the unsend goes to) ran.
// It returns what it was.
func (s *Store) Unsay(roomID, key string, takers int) (Said, bool) {
	var out Said
	var found bool
	s.withConvo(roomID, func(c *convo, _ *refBook) {
		m, ok := c.msgs[key]
		if !ok || m.gone {
			return
		}
		m.gone, m.takers = true, takers
		out, found = m.view(key), true
	})
	return out, found
}

// TakeCopies removes and returns the member's copies of the message key (its unsend deletes them),
// and drops them from the member's wipe record. A copy that is a combined send carrying other
// messages too stays (combined is then true, and ids what it was).
func (s *Store) TakeCopies(roomID, key, member string) (ids []string, combined bool) {
	s.withConvo(roomID, func(c *convo, b *refBook) {
		m, ok := c.msgs[key]
		if !ok {
			return
		}
		ids = m.copies[member]
		delete(m.copies, member)
		if m.gone {
			m.takers--
		}
		if combined = m.combined[member]; combined {
			// The copy is shared with other messages: it stays, for them and for the wipe.
			if m.done() {
				c.forget(key)
			}
			return
		}
		for _, id := range ids {
			delete(c.byCopy, copyKey(member, id))
			b.drop(member, id)
		}
		if m.done() {
			c.forget(key)
		}
	})
	return ids, combined
}

// Get is the message key, unless it was taken back or forgotten.
func (s *Store) Get(roomID, key string) (Said, bool) {
	var out Said
	var found bool
	s.withConvo(roomID, func(c *convo, _ *refBook) {
		if m, ok := c.msgs[key]; ok && !m.gone {
			out, found = m.view(key), true
		}
	})
	return out, found
}

// Forget drops ids from the member's wipe record: messages already deleted otherwise.
func (s *Store) Forget(t Trace, ids ...string) {
	b, t := s.book(t, false)
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		b.drop(t.Member, id)
	}
}

// React adds (or removes) the member's emoji on the message key. changed is false when it was
// already so: a reaction counts once per member and emoji.
func (s *Store) React(roomID, key, member, emoji string, add bool) (out Said, changed bool) {
	s.withConvo(roomID, func(c *convo, _ *refBook) {
		m, ok := c.msgs[key]
		if !ok || m.gone {
			return
		}
		i := slices.Index(m.reacts, Reaction{member, emoji})
		switch {
		case add && i < 0:
			m.reacts = append(m.reacts, Reaction{member, strings.Clone(emoji)})
			changed = true
		case !add && i >= 0:
			m.reacts = slices.Delete(m.reacts, i, i+1)
			changed = true
		}
		out = m.view(key)
	})
	return out, changed
}

// shared is id as the wipe's record holds it (recorded just before, at the end of the member's
// list), so that both hold one string; a fresh copy when the record does not have it.
// Callers hold b.mu.
func (b *refBook) shared(member, id string) string {
	ids := b.ids[member]
	for i := len(ids) - 1; i >= max(0, len(ids)-8); i-- {
		if ids[i] == id {
			return ids[i]
		}
	}
	return strings.Clone(id)
}

// done says a message taken back can be forgotten: every member's TakeCopies ran. Not sooner, even
// with no copy left: a member's copy may still be on its way (recorded when its send returns, just
// before that member's TakeCopies runs), and forgotten it would stay in their chat for good.
func (s *said) done() bool { return s.gone && s.takers <= 0 }

func (s *said) markCombined(member string) {
	if s.combined == nil {
		s.combined = make(map[string]bool)
	}
	s.combined[member] = true
}

// drop removes one id from the member's wipe record (it was deleted already). Callers hold b.mu.
func (b *refBook) drop(member, id string) {
	ids := b.ids[member]
	if i := slices.Index(ids, id); i >= 0 {
		b.ids[member] = slices.Delete(ids, i, i+1)
		b.n--
	}
}

// Combine records that the member's chat shows id as a combined send of lines (each a mapped
// message's key, pseudonym and text), so that an edit or unsend of one re-renders it.
func (s *Store) Combine(roomID, member, id string, lines []Line) {
	s.withConvo(roomID, func(c *convo, b *refBook) {
		kept := make([]Line, 0, len(lines))
		for _, l := range lines {
			if _, ok := c.msgs[l.Key]; !ok {
				return // one was forgotten already: the send cannot be re-rendered whole
			}
			kept = append(kept, Line{Key: l.Key, Nick: l.Nick, Text: strings.Clone(l.Text)})
		}
		c.combos[copyKey(member, b.shared(member, id))] = kept
	})
}

// Recombine changes the line of the message key in the member's combined send id: its new text,
// or, with remove, the line taken out. It returns the lines the send now shows (none: delete it);
// ok is false when id is no combined send kumo can re-render (the room closed, or a message it
// carried was forgotten).
func (s *Store) Recombine(roomID, member, id, key, text string, remove bool) (lines []Line, ok bool) {
	s.withConvo(roomID, func(c *convo, _ *refBook) {
		ck := copyKey(member, id)
		cur, found := c.combos[ck]
		i := slices.IndexFunc(cur, func(l Line) bool { return l.Key == key })
		if !found || i < 0 {
			return
		}
		if remove {
			cur = slices.Delete(cur, i, i+1)
		} else {
			cur[i].Text = strings.Clone(text)
		}
		if len(cur) == 0 {
			delete(c.combos, ck)
		} else {
			c.combos[ck] = cur
		}
		lines, ok = slices.Clone(cur), true
	})
	return lines, ok
}
