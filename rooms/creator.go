package rooms

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"

	"github.com/patrickmn/go-cache"
)

// A creator key lets a room's creator be its creator again from another chat: after reloading the
// web page (a reload is a new, unlinkable visitor), or from another messenger. It is 128 random bits
// shown once, when the room opens; the store keeps only its keyed hash, so the key exists nowhere but
// in what the creator copied.

// CreatorKeyPrefix starts every creator key, so that a key pasted where a password would go is
// recognised as one.
const CreatorKeyPrefix = "kumo-"

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// LooksLikeCreatorKey says whether s has the shape of a creator key (whether it opens a room is the
// store's business).
func LooksLikeCreatorKey(s string) bool {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(strings.ToLower(s), CreatorKeyPrefix)
	if !ok || len(rest) != 26 {
		return false
	}
	_, err := keyEncoding.DecodeString(strings.ToUpper(rest))
	return err == nil
}

func (s *Store) creatorKeyOf(key string) string {
	return s.hmac("creator\x00" + strings.ToLower(strings.TrimSpace(key)))
}

// NewCreatorKey issues a fresh creator key for the room whose creator is the member with that key;
// a key issued before for the room stops working.
func (s *Store) NewCreatorKey(member string) (string, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails: see randIntn
	key := CreatorKeyPrefix + strings.ToLower(keyEncoding.EncodeToString(b))
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _, ok := s.roomOf(member)
	if !ok {
		return "", ErrNotInRoom
	}
	if r.creator != member {
		return "", ErrNotCreator
	}
	if r.ckKey != "" {
		s.c.Delete(creatorPrefix + r.ckKey)
	}
	r.ckKey = s.creatorKeyOf(key)
	// The entry expires with the room; close deletes it sooner.
	s.c.Set(creatorPrefix+r.ckKey, r.id, max(r.expiresAt.Sub(s.now()), time.Second))
	return key, nil
}

// Reclaimed is what a successful Reclaim changed.
type Reclaimed struct {
	Room Room
	// Me is the reclaimer's entry in the room, now its creator.
	Me Member
	// Moved is set when the reclaimer took over the creator's seat (their pseudonym and place): the
	// room has the same members, and Replaced, the chat the seat was in, is no longer in it.
	Moved    bool
	Replaced Member
	// Joined is set when the creator's seat was empty (they had left) and the reclaimer joined as a
	// new member.
	Joined bool
	// Already is set when the reclaimer was already the creator: nothing changed.
	Already bool
}

// Reclaim makes m the creator of the room the creator key opens. The creator's seat moves to m when
// it is still in the room (a reloaded page leaves its old, dead session there), so the room keeps
// its size and the creator their pseudonym; otherwise m joins, within the room's capacity. Wrong keys
// count as wrong passwords, per person, per origin (Inbound.Origin) and globally, and past a limit no
// key is looked at (see limits.go).
func (s *Store) Reclaim(key string, m Member, origin string) (Reclaimed, error) {
	mk := m.Key()
	ck := s.creatorKeyOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.throttled(mk, origin); err != nil {
		return Reclaimed{}, err
	}
	var r *room
	if v, ok := s.c.Get(creatorPrefix + ck); ok {
		r, _ = s.getRoom(v.(string))
	}
	if r == nil || r.ckKey != ck {
		s.count(mk, origin)
		return Reclaimed{}, ErrWrongCreatorKey
	}
	cur, mine, in := s.roomOf(mk)
	if in && cur != r {
		return Reclaimed{}, ErrAlreadyInRoom
	}
	seat := -1
	for i := range r.members {
		if r.members[i].Key() == r.creator {
			seat = i
		}
	}
	switch {
	case in && r.creator == mk:
		return Reclaimed{Room: r.snapshot(), Me: r.members[mine], Already: true}, nil
	case in:
		// A member of the room takes the creator's rights; the creator's old seat, if any, goes.
		var out Reclaimed
		if seat >= 0 {
			out.Replaced, out.Moved = r.members[seat], true
			s.removeMember(r, seat)
		}
		r.creator = mk
		_, mine, _ = s.roomOf(mk)
		out.Room, out.Me = r.snapshot(), r.members[mine]
		return out, nil
	case seat >= 0:
		old := r.members[seat]
		m.Nick = old.Nick
		r.members[seat] = m
		r.creator = mk
		s.c.Delete(memberPrefix + old.Key())
		s.c.Set(memberPrefix+mk, r.id, cache.NoExpiration)
		s.bookLeave(r.id, old.Key())
		s.bookJoin(r.id, mk)
		return Reclaimed{Room: r.snapshot(), Me: m, Moved: true, Replaced: old}, nil
	default:
		if len(r.members) >= s.cfg.MaxMembers {
			return Reclaimed{}, ErrRoomFull
		}
		m.Nick = uniqueNick(r.members)
		r.members = append(r.members, m)
		r.creator = mk
		s.c.Set(memberPrefix+mk, r.id, cache.NoExpiration)
		s.bookJoin(r.id, mk)
		s.members.Add(1)
		return Reclaimed{Room: r.snapshot(), Me: m, Joined: true}, nil
	}
}

// removeMember takes r.members[i] out of r. Callers hold mu.
func (s *Store) removeMember(r *room, i int) {
	key := r.members[i].Key()
	r.members = append(r.members[:i:i], r.members[i+1:]...)
	s.c.Delete(memberPrefix + key)
	s.bookLeave(r.id, key)
	s.members.Add(-1)
}
