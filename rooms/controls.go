package rooms

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
)

// DefaultMaxLifetime is how long /extend may keep a room alive at most, from its opening.
const DefaultMaxLifetime = 7 * 24 * time.Hour

// TokenLen is the length of a join token: 128 random bits in unpadded base64url, which fits
// Telegram's deep-link payload (at most 64 characters of A-Za-z0-9_-).
const TokenLen = 22

// maxTokens bounds what one room's invite links may hold in memory.
const maxTokens = 256

// joinToken is what a room keeps of one invite link: never the token, only whether it is single-use.
type joinToken struct {
	once bool
}

// tokenKey is a token's keyed hash. Unlike a password it is compared exactly: case and spaces inside
// it are part of its 128 bits.
func (s *Store) tokenKey(token string) string {
	return s.hmac("join-token\x00" + strings.TrimSpace(token))
}

// tokenRoom finds the live room a token opens. Callers hold mu.
func (s *Store) tokenRoom(tokKey string) (*room, joinToken, bool) {
	v, ok := s.c.Get(tokenPrefix + tokKey)
	if !ok {
		return nil, joinToken{}, false
	}
	r, ok := s.getRoom(v.(string))
	if !ok {
		return nil, joinToken{}, false
	}
	t, ok := r.tokens[tokKey]
	if !ok {
		return nil, joinToken{}, false
	}
	return r, t, true
}

// NewToken makes a join token for the member's room: sent to the bot (or opened as a link) it joins
// like the password, without being the password. once makes it work a single time. The room keeps
// only its keyed hash, and forgets it when it ends.
func (s *Store) NewToken(key string, once bool) (string, Room, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	token := base64.RawURLEncoding.EncodeToString(b)
	tk := s.tokenKey(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _, ok := s.roomOf(key)
	if !ok {
		return "", Room{}, ErrNotInRoom
	}
	if len(r.tokens) >= maxTokens {
		return "", Room{}, ErrTooManyTokens
	}
	if r.tokens == nil {
		r.tokens = map[string]joinToken{}
	}
	r.tokens[tk] = joinToken{once: once}
	s.c.Set(tokenPrefix+tk, r.id, max(r.expiresAt.Sub(s.now()), time.Second))
	return token, r.snapshot(), nil
}

// RevokeTokens drops every join token of the creator's room; it returns how many there were.
func (s *Store) RevokeTokens(key string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _, ok := s.roomOf(key)
	if !ok {
		return 0, ErrNotInRoom
	}
	if r.creator != key {
		return 0, ErrNotCreator
	}
	n := len(r.tokens)
	for k := range r.tokens {
		s.c.Delete(tokenPrefix + k)
	}
	r.tokens = nil
	return n, nil
}

// Kick removes the member called nick from the creator's room for good: the same identity (platform
// user) is refused if it tries to join again, with the password or a token.
func (s *Store) Kick(key, nick string) (Room, Member, error) {
	nick = strings.Join(strings.Fields(nick), " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _, ok := s.roomOf(key)
	if !ok {
		return Room{}, Member{}, ErrNotInRoom
	}
	if r.creator != key {
		return Room{}, Member{}, ErrNotCreator
	}
	i := -1
	for j, m := range r.members {
		if strings.EqualFold(m.Nick, nick) {
			i = j
			break
		}
	}
	switch {
	case i < 0:
		return Room{}, Member{}, ErrNoSuchMember
	case r.members[i].Key() == key:
		return Room{}, Member{}, ErrKickSelf
	}
	m := r.members[i]
	s.removeMember(r, i)
	if r.kicked == nil {
		r.kicked = map[string]bool{}
	}
	r.kicked[m.Key()] = true
	return r.snapshot(), m, nil
}

// SetLocked locks (no new joins) or unlocks the creator's room; changed is false when it already was.
func (s *Store) SetLocked(key string, locked bool) (r Room, changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm, _, ok := s.roomOf(key)
	if !ok {
		return Room{}, false, ErrNotInRoom
	}
	if rm.creator != key {
		return Room{}, false, ErrNotCreator
	}
	changed = rm.locked != locked
	rm.locked = locked
	return rm.snapshot(), changed, nil
}

// CanExtend returns the member's room if one more Lifetime still fits under MaxLifetime.
func (s *Store) CanExtend(key string) (Room, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, _, ok := s.roomOf(key)
	if !ok {
		return Room{}, ErrNotInRoom
	}
	if !s.fits(r) {
		return r.snapshot(), ErrMaxLifetime
	}
	return r.snapshot(), nil
}

func (s *Store) fits(r *room) bool {
	return r.expiresAt.Add(s.cfg.Lifetime).Sub(r.openedAt) <= s.cfg.MaxLifetime
}

// Extend pushes the end of the room with that id by one Lifetime and reschedules its warnings. It
// fails with ErrRoomGone when the room has ended and ErrMaxLifetime when the extension would take it
// past MaxLifetime; either way nothing changed. Once it returns nil the room cannot expire on its old
// schedule (see expire).
func (s *Store) Extend(roomID string) (Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.c.Get(roomPrefix + roomID)
	if !ok {
		return Room{}, ErrRoomGone
	}
	r := v.(*room)
	if r.closed.Load() {
		return Room{}, ErrRoomGone
	}
	if !s.fits(r) {
		return r.snapshot(), ErrMaxLifetime
	}
	r.expiresAt = r.expiresAt.Add(s.cfg.Lifetime)
	left := max(r.expiresAt.Sub(s.now()), time.Millisecond)
	s.schedule(r, left)
	// Every cache item that lives as long as the room lives longer now. Set does not call OnEvicted.
	s.c.Set(roomPrefix+r.id, r, left)
	if pv, ok := s.c.Get(passwordPrefix + r.pwKey); ok && pv.(string) == r.id {
		s.c.Set(passwordPrefix+r.pwKey, r.id, left)
	}
	for k := range r.tokens {
		s.c.Set(tokenPrefix+k, r.id, left)
	}
	if bv, ok := s.c.Get(refsPrefix + r.id); ok {
		s.c.Set(refsPrefix+r.id, bv, left+wipeTTL)
	}
	return r.snapshot(), nil
}

// Locked says whether the member's room is locked (for /info).
func (s *Store) Locked(key string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, _, ok := s.roomOf(key)
	return ok && r.locked
}

// Live says whether the room with that id has not ended.
func (s *Store) Live(roomID string) bool {
	_, ok := s.getRoom(roomID)
	return ok
}
