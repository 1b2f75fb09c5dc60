package rooms

import (
	"strings"
	"sync"
	"time"
)

// What a room remembers of its conversation: per member, the platform ids of every message kumo
// showed them about the room and of their own messages the bot may delete, so that the room's end
// can erase them from each member's chat. Ids only, never text; in memory, in the same cache as the
// room, gone with it.
//
// A Trace names one member's record: in a room, or (Room "") before a room exists, with the
// member's pending purchase (the /newroom message and the invoice). The record of a room outlives
// the room only until each member's wipe has taken it (wipeTTL at most), so that messages still on
// their way when the room closed are erased too.

// Trace names one member's record of messages.
type Trace struct {
	Room   string // the room's ID; "" for the member's pending purchase
	Member string // the member's Key
}

// Pending is the trace of a person's pending purchase.
func Pending(memberKey string) Trace { return Trace{Member: memberKey} }

// DefaultMaxRefs caps one room's record (rooms.max_refs). At 28 bytes a Telegram ref and 68 a Matrix
// event id (BenchmarkRefs) a full room costs 3-7 MB; a 24-hour room of 50 members reaches it only if
// every member sees a message every 40 seconds all day.
const DefaultMaxRefs = 100_000

// wipeTTL is how long a closed room's record waits for its wipes (and how long an unopened
// purchase's record lives): far longer than a wipe takes, short enough that nothing lingers.
const wipeTTL = time.Hour

const (
	refsPrefix    = "w:" // room id -> *refBook
	pendingPrefix = "q:" // member key -> *refBook of their pending purchase
)

// refBook is one room's (or one pending purchase's) record.
type refBook struct {
	mu  sync.Mutex
	max int
	n   int
	ids map[string][]string // member key -> ids, in the order shown
	// tracing says whose messages are still recorded: members of the room, and those who left or
	// whose room closed until their wipe has taken their ids.
	tracing map[string]bool
	// members says who is in the room now (a member who left and whose wipe ran is not traced, one
	// who rejoined is again).
	members map[string]bool
}

func newBook(max int) *refBook {
	return &refBook{max: max, ids: make(map[string][]string), tracing: make(map[string]bool), members: make(map[string]bool)}
}

// add records ids for key; it returns how many it could not keep (the cap, or key not traced).
func (b *refBook) add(key string, ids []string) (dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.tracing[key] {
		return len(ids)
	}
	room := b.max - b.n
	if room < len(ids) {
		dropped = len(ids) - max(room, 0)
		ids = ids[:max(room, 0)]
	}
	for _, id := range ids {
		// A fresh string: an id must not pin the (larger) buffer it was cut from.
		b.ids[key] = append(b.ids[key], strings.Clone(id))
	}
	b.n += len(ids)
	return dropped
}

func (b *refBook) take(key string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := b.ids[key]
	delete(b.ids, key)
	b.n -= len(ids)
	if !b.members[key] {
		delete(b.tracing, key)
	}
	return ids
}

func (b *refBook) join(key string) {
	b.mu.Lock()
	b.tracing[key], b.members[key] = true, true
	b.mu.Unlock()
}

func (b *refBook) leave(key string) {
	b.mu.Lock()
	delete(b.members, key)
	b.mu.Unlock()
}

func (b *refBook) count() (refs, chats int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, len(b.ids)
}

func (s *Store) maxRefs() int {
	if s.cfg.MaxRefs > 0 {
		return s.cfg.MaxRefs
	}
	return DefaultMaxRefs
}

// book finds the record a trace belongs to. A pending trace of someone with no pending record
// but in a room they created goes to that room (an invoice delivered after it was paid).
func (s *Store) book(t Trace, create bool) (*refBook, Trace) {
	if t.Room != "" {
		if v, ok := s.c.Get(refsPrefix + t.Room); ok {
			return v.(*refBook), t
		}
		return nil, t
	}
	if v, ok := s.c.Get(pendingPrefix + t.Member); ok {
		return v.(*refBook), t
	}
	if !create {
		return nil, t
	}
	s.mu.RLock()
	r, _, in := s.roomOf(t.Member)
	s.mu.RUnlock()
	if in && r.creator == t.Member {
		return s.book(Trace{Room: r.id, Member: t.Member}, false)
	}
	b := newBook(s.maxRefs())
	b.tracing[t.Member], b.members[t.Member] = true, true
	if err := s.c.Add(pendingPrefix+t.Member, b, wipeTTL); err != nil {
		// Someone else made it meanwhile: use theirs.
		return s.book(t, false)
	}
	return b, t
}

// Keep records the ids of messages shown in (or sent from) the member's chat. It returns how many
// it did not keep: all of them when the trace is over (the member's wipe already ran), some when the
// room's record is full (rooms.max_refs).
func (s *Store) Keep(t Trace, ids ...string) (dropped int) {
	if len(ids) == 0 {
		return 0
	}
	b, t := s.book(t, true)
	if b == nil {
		return len(ids)
	}
	s.adopt(b, t)
	return b.add(t.Member, ids)
}

// adopt starts tracing a member of the room whom no path into the room announced (bookJoin): a
// member is always traced, whichever way they came in.
func (s *Store) adopt(b *refBook, t Trace) {
	if t.Room == "" {
		return
	}
	b.mu.Lock()
	known := b.tracing[t.Member]
	b.mu.Unlock()
	if known {
		return
	}
	s.mu.RLock()
	r, _, in := s.roomOf(t.Member)
	s.mu.RUnlock()
	if in && r.id == t.Room {
		b.join(t.Member)
	}
}

// Tracing says whether messages for the trace are still recorded: false once the member's wipe
// took their record (they left, or the room ended), so that nothing of the room reaches them after.
func (s *Store) Tracing(t Trace) bool {
	if t.Room == "" {
		return true
	}
	b, _ := s.book(t, false)
	if b == nil {
		return false
	}
	s.adopt(b, t)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tracing[t.Member]
}

// TakeRefs removes and returns the member's record, for their wipe. Once a member who is no longer
// in the room has been taken, nothing more is recorded for them.
func (s *Store) TakeRefs(t Trace) []string {
	b, _ := s.book(t, false)
	if b == nil {
		return nil
	}
	ids := b.take(t.Member)
	if t.Room == "" {
		s.c.Delete(pendingPrefix + t.Member)
		return ids
	}
	b.mu.Lock()
	done := len(b.tracing) == 0
	b.mu.Unlock()
	if done {
		s.c.Delete(refsPrefix + t.Room)
	}
	return ids
}

// RefsLeft is how many recorded ids no wipe has taken yet, and in how many chats (counts only: what
// a stopping kumo could not erase).
func (s *Store) RefsLeft() (refs, chats int) {
	for k, it := range s.c.Items() {
		if strings.HasPrefix(k, refsPrefix) || strings.HasPrefix(k, pendingPrefix) {
			r, c := it.Object.(*refBook).count()
			refs += r
			chats += c
		}
	}
	return refs, chats
}

// openBook starts a room's record with its creator, moving in what their purchase recorded.
func (s *Store) openBook(r *room, creator string) {
	b := newBook(s.maxRefs())
	b.join(creator)
	if v, ok := s.c.Get(pendingPrefix + creator); ok {
		p := v.(*refBook)
		s.c.Delete(pendingPrefix + creator)
		b.add(creator, p.take(creator))
	}
	s.c.Set(refsPrefix+r.id, b, s.cfg.Lifetime+wipeTTL)
}

func (s *Store) bookJoin(roomID, key string) {
	if v, ok := s.c.Get(refsPrefix + roomID); ok {
		v.(*refBook).join(key)
	}
}

func (s *Store) bookLeave(roomID, key string) {
	if v, ok := s.c.Get(refsPrefix + roomID); ok {
		v.(*refBook).leave(key)
	}
}

// bookClose lets a closed room's record wait for its wipes (wipeTTL at most).
func (s *Store) bookClose(r *room) {
	v, ok := s.c.Get(refsPrefix + r.id)
	if !ok {
		return
	}
	b := v.(*refBook)
	b.mu.Lock()
	clear(b.members)
	empty := len(b.tracing) == 0
	b.mu.Unlock()
	if empty {
		s.c.Delete(refsPrefix + r.id)
		return
	}
	s.c.Set(refsPrefix+r.id, b, wipeTTL)
}
