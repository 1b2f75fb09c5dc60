// Package rooms holds every piece of kumo's relay state — rooms, members, password keys, pseudonyms,
// failed password attempts and rooms being paid for — in one in-memory TTL cache (go-cache) and
// nowhere else. Nothing is written to disk; a restart forgets everything by design.
//
// The store hands out copies (Room, Member values), never pointers into the cache.
package rooms

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/patrickmn/go-cache"
	"golang.org/x/time/rate"
)

// Config shapes rooms. The zero value of a field means its default.
type Config struct {
	// Lifetime is how long a room lives after it opened (rooms.lifetime, default 24h).
	Lifetime time.Duration `yaml:"lifetime"`
	// MaxMembers caps a room (rooms.max_members, default 50).
	MaxMembers int `yaml:"max_members"`
	// Warnings are how long before the end members are warned; only those shorter than Lifetime are
	// used. Default: 1h and 5m.
	Warnings []time.Duration `yaml:"warnings"`
	// MaxFailures wrong passwords within FailureWindow make a person wait until the window ends
	// (default 5 in 15m).
	MaxFailures   int           `yaml:"max_failures"`
	FailureWindow time.Duration `yaml:"failure_window"`
	// MaxRefs caps how many message ids one room records for its wipe (rooms.max_refs, default
	// DefaultMaxRefs); messages past it are counted and left in the chats.
	MaxRefs int `yaml:"max_refs"`
	// MaxMapped caps how many relayed messages one room maps to their copies for replies, edits,
	// unsend and reactions (rooms.max_mapped, default DefaultMaxMapped); the oldest is forgotten.
	MaxMapped int `yaml:"max_mapped"`
	// MaxLifetime caps how long /extend can keep a room alive, counted from its opening
	// (rooms.max_lifetime, default 7 days, never less than Lifetime).
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// MaxFailuresPerOrigin bounds the wrong passwords from one origin (a web client's IP address or
	// IPv6 /64, see Inbound.Origin) per FailureWindow, however many identities it uses
	// (rooms.max_failures_per_origin, default 20). Past it, join attempts from the origin wait.
	MaxFailuresPerOrigin int `yaml:"max_failures_per_origin"`
	// MaxFailuresPerHomeserver is the same for origins that are Matrix homeservers ("hs:" origins),
	// which serve many people (rooms.max_failures_per_homeserver, default 200).
	MaxFailuresPerHomeserver int `yaml:"max_failures_per_homeserver"`
	// MaxFailuresGlobal bounds the wrong passwords from everyone together per FailureWindow
	// (rooms.max_failures_global, default 1,000). It is what an attacker with unlimited identities and
	// origins meets, and what the password strength check is sized against (see MinGuesses).
	MaxFailuresGlobal int `yaml:"max_failures_global"`
	// MaxPendingPerOrigin and MaxPendingGlobal cap unpaid purchases (invoices waiting to be paid) from
	// one origin and from everyone (rooms.max_pending_per_origin, default 10; rooms.max_pending_global,
	// default 1,000). A person always has at most one.
	MaxPendingPerOrigin int `yaml:"max_pending_per_origin"`
	MaxPendingGlobal    int `yaml:"max_pending_global"`
	// Now is the clock the limits read (tests); nil means time.Now.
	Now func() time.Time `yaml:"-"`
}

// DefaultConfig is a 24-hour room of at most 50 members.
func DefaultConfig() Config {
	return Config{
		Lifetime:      24 * time.Hour,
		MaxMembers:    50,
		Warnings:      []time.Duration{time.Hour, 5 * time.Minute},
		MaxFailures:   5,
		FailureWindow: 15 * time.Minute,

		MaxFailuresPerOrigin:     20,
		MaxFailuresPerHomeserver: 200,
		MaxFailuresGlobal:        1000,
		MaxPendingPerOrigin:      10,
		MaxPendingGlobal:         1000,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Lifetime == 0 {
		c.Lifetime = d.Lifetime
	}
	if c.MaxMembers == 0 {
		c.MaxMembers = d.MaxMembers
	}
	if c.Warnings == nil {
		c.Warnings = d.Warnings
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = d.MaxFailures
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = d.FailureWindow
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = max(DefaultMaxLifetime, c.Lifetime)
	}
	if c.MaxFailuresPerOrigin == 0 {
		c.MaxFailuresPerOrigin = d.MaxFailuresPerOrigin
	}
	if c.MaxFailuresPerHomeserver == 0 {
		c.MaxFailuresPerHomeserver = d.MaxFailuresPerHomeserver
	}
	if c.MaxFailuresGlobal == 0 {
		c.MaxFailuresGlobal = d.MaxFailuresGlobal
	}
	if c.MaxPendingPerOrigin == 0 {
		c.MaxPendingPerOrigin = d.MaxPendingPerOrigin
	}
	if c.MaxPendingGlobal == 0 {
		c.MaxPendingGlobal = d.MaxPendingGlobal
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every value that cannot work, each naming its key. A warning not shorter than the
// lifetime is not an error here (it is skipped): see UnusedWarnings.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Lifetime < time.Second {
		errs = append(errs, fmt.Errorf("rooms.lifetime must be at least 1s, e.g. 24h, got %s", c.Lifetime))
	}
	if c.MaxMembers < 2 || c.MaxMembers > maxRoomSize {
		errs = append(errs, fmt.Errorf("rooms.max_members must be between 2 and %d, got %d", maxRoomSize, c.MaxMembers))
	}
	if c.MaxFailures < 1 {
		errs = append(errs, fmt.Errorf("rooms.max_failures must be at least 1, got %d", c.MaxFailures))
	}
	if c.FailureWindow < time.Second {
		errs = append(errs, fmt.Errorf("rooms.failure_window must be at least 1s, e.g. 15m, got %s", c.FailureWindow))
	}
	if c.MaxLifetime < c.Lifetime {
		errs = append(errs, fmt.Errorf("rooms.max_lifetime (%s) must be at least rooms.lifetime (%s)", c.MaxLifetime, c.Lifetime))
	}
	if c.MaxRefs < 0 {
		errs = append(errs, fmt.Errorf("rooms.max_refs must not be negative, got %d", c.MaxRefs))
	}
	if c.MaxMapped < 0 {
		errs = append(errs, fmt.Errorf("rooms.max_mapped must not be negative, got %d", c.MaxMapped))
	}
	if c.MaxFailuresPerOrigin < 1 || c.MaxFailuresPerHomeserver < 1 || c.MaxFailuresGlobal < 1 {
		errs = append(errs, fmt.Errorf("rooms.max_failures_per_origin, rooms.max_failures_per_homeserver and rooms.max_failures_global must be at least 1"))
	}
	if c.MaxPendingPerOrigin < 1 || c.MaxPendingGlobal < 1 {
		errs = append(errs, fmt.Errorf("rooms.max_pending_per_origin and rooms.max_pending_global must be at least 1"))
	}
	if len(errs) == 0 && c.MinGuesses() > maxMinGuesses {
		errs = append(errs, fmt.Errorf("rooms.max_failures_global %d per rooms.failure_window %s over rooms.lifetime %s allows so many guesses that no password could be strong enough (generated ones included); lower it",
			c.MaxFailuresGlobal, c.FailureWindow, c.Lifetime))
	}
	for _, w := range c.Warnings {
		if w <= 0 {
			errs = append(errs, fmt.Errorf("rooms.warnings must be positive durations, e.g. [1h, 5m], got %s", w))
		}
	}
	return errors.Join(errs...)
}

// UnusedWarnings are the warnings that can never be given because they are not shorter than the
// lifetime. A configuration that lists one explicitly is a mistake worth refusing (kumo does).
func (c Config) UnusedWarnings() []time.Duration {
	c = c.withDefaults()
	var out []time.Duration
	for _, w := range c.Warnings {
		if w >= c.Lifetime {
			out = append(out, w)
		}
	}
	return out
}

// maxRoomSize keeps rooms well inside the 1,024 pseudonyms there are to draw from.
const maxRoomSize = 500

// MinPasswordLen is the shortest password a creator may choose, in characters.
const MinPasswordLen = 12

// Member is one person in one room, reached in their DM on one platform.
type Member struct {
	Platform string
	User     string
	Chat     string
	// Nick is the member's pseudonym in the room: the only name other members ever see.
	Nick string
}

// Key identifies the person across rooms: one platform user is one member whatever DM they use.
func (m Member) Key() string { return MemberKey(m.Platform, m.User) }

// MemberKey builds a Member's Key from its parts.
func MemberKey(platform, user string) string { return platform + "\x1f" + user }

// Room is a snapshot of one room.
type Room struct {
	ID        string
	Creator   string // the creator's member key
	Members   []Member
	OpenedAt  time.Time
	ExpiresAt time.Time
}

// Reason says why a room closed.
type Reason int

const (
	// Expired: the room reached the end of its lifetime.
	Expired Reason = iota + 1
	// Destroyed: the creator ended it.
	Destroyed
	// Shutdown: kumo is stopping and forgets everything.
	Shutdown
)

func (r Reason) String() string {
	switch r {
	case Expired:
		return "expired"
	case Destroyed:
		return "destroyed"
	case Shutdown:
		return "shutdown"
	}
	return "unknown"
}

// Events receives what happens to rooms on their own. Calls come from timer goroutines (and from the
// caller of Destroy/CloseAll), never while the store is locked, and must not block for long.
type Events interface {
	// RoomEnding warns that r ends in left.
	RoomEnding(r Room, left time.Duration)
	// RoomClosed says r is gone; its members are no longer in any room.
	RoomClosed(r Room, why Reason)
}

// Errors callers branch on.
var (
	ErrNotInRoom       = errors.New("not in a room")
	ErrAlreadyInRoom   = errors.New("already in a room")
	ErrWrongPassword   = errors.New("no live room has that password")
	ErrPasswordTaken   = errors.New("password already used by a live room")
	ErrPasswordTooWeak = fmt.Errorf("a password needs at least %d characters", MinPasswordLen)
	ErrRoomFull        = errors.New("room is full")
	ErrNotCreator      = errors.New("only the room's creator can do that")
	ErrNickTaken       = errors.New("that name is taken in this room")
	ErrNickInvalid     = errors.New("that name cannot be used")
	ErrLocked          = errors.New("the room is locked")
	ErrKicked          = errors.New("removed from that room by its creator")
	ErrNoSuchMember    = errors.New("no member has that name")
	ErrKickSelf        = errors.New("the creator cannot remove themselves")
	ErrMaxLifetime     = errors.New("the room cannot live any longer")
	ErrRoomGone        = errors.New("the room has ended")
	ErrTooManyTokens   = errors.New("the room has too many invite links")
	ErrWrongCreatorKey = errors.New("no live room has that creator key")
)

// Store is the room state. It is safe for concurrent use.
type Store struct {
	cfg   Config
	ev    Events
	c     *cache.Cache
	pwKey []byte // per-process HMAC key: password keys mean nothing outside this process

	// mu serialises compound changes (join = check password, capacity, membership, then write),
	// which go-cache's own per-call locking cannot make atomic.
	mu      sync.RWMutex
	rooms   atomic.Int64
	members atomic.Int64
	now     func() time.Time

	// The guess limits, guarded by mu (every join takes it anyway): one token bucket per origin that
	// guessed wrong lately, and one for everyone. See limits.go.
	origins *cache.Cache
	global  *rate.Limiter
	// pending counts unpaid purchases per origin ("" for all of them together); guarded by pendingMu,
	// which is never held while calling into the cache (go-cache calls evicted from inside Delete).
	pendingMu sync.Mutex
	pending   map[string]int
}

// Cache key prefixes: one cache, one namespace per kind of state.
const (
	roomPrefix     = "r:" // room id -> *room
	passwordPrefix = "p:" // HMAC(password) -> room id
	memberPrefix   = "m:" // member key -> room id
	failurePrefix  = "f:" // member key -> *failures, expiring with the window
	invoicePrefix  = "i:" // invoice id -> *Purchase
	buyerPrefix    = "b:" // member key -> invoice id of their pending purchase
	tokenPrefix    = "t:" // keyed hash of a join token -> room id
	creatorPrefix  = "k:" // HMAC(creator key) -> room id
)

// room is the cached value; guarded by Store.mu except closed, which decides once who closes it.
type room struct {
	id        string
	pwKey     string
	creator   string
	ckKey     string // HMAC of the room's creator key ("" until one is issued)
	members   []Member
	openedAt  time.Time
	expiresAt time.Time
	timers    []*time.Timer
	// gen counts reschedulings (Extend): a timer of an older schedule does nothing.
	gen    int
	closed atomic.Bool
	reason Reason
	// The creator's controls (controls.go): no joins while locked; kicked member keys never rejoin;
	// join tokens by their keyed hash.
	locked bool
	kicked map[string]bool
	tokens map[string]joinToken
}

func (r *room) snapshot() Room {
	return Room{
		ID:        r.id,
		Creator:   r.creator,
		Members:   append([]Member(nil), r.members...),
		OpenedAt:  r.openedAt,
		ExpiresAt: r.expiresAt,
	}
}

// New makes an empty store. ev may be nil.
func New(cfg Config, ev Events) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("rooms: password key: %w", err)
	}
	// The janitor is only the backstop that frees expired failure counters and purchases; rooms close
	// on their own timers, to the second.
	janitor := min(cfg.Lifetime, cfg.FailureWindow, time.Minute)
	s := &Store{cfg: cfg, ev: ev, c: cache.New(cache.NoExpiration, janitor), pwKey: key, now: cfg.Now,
		origins: cache.New(cfg.FailureWindow, janitor),
		global:  rate.NewLimiter(perWindow(cfg.MaxFailuresGlobal, cfg.FailureWindow), cfg.MaxFailuresGlobal),
		pending: make(map[string]int)}
	s.c.OnEvicted(s.evicted)
	return s, nil
}

// Config is the store's effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Close forgets everything the store holds. Rooms still open are not announced: call CloseAll first
// for that. (go-cache ends its janitor goroutine itself once the store is garbage collected.)
func (s *Store) Close() {
	s.c.Flush()
	s.origins.Flush()
}

func (s *Store) evicted(k string, v any) {
	if strings.HasPrefix(k, invoicePrefix) {
		s.unpend(v.(*Purchase).Origin)
		return
	}
	if strings.HasPrefix(k, roomPrefix) {
		// Reached only if a room item expired in the cache before its timer ran.
		s.close(v.(*room), Expired)
	}
}

// NormalizePassword is how a password is compared: surrounding and repeated spaces don't count, and
// neither does case (phone keyboards capitalise the first letter of a message).
func NormalizePassword(p string) string {
	return strings.ToLower(strings.Join(strings.Fields(p), " "))
}

// CheckPassword says whether p may be chosen for a new room (not whether it is free).
func CheckPassword(p string) error {
	if utf8.RuneCountInString(NormalizePassword(p)) < MinPasswordLen {
		return ErrPasswordTooWeak
	}
	return nil
}

func (s *Store) keyOf(password string) string {
	return s.hmac("password\x00" + NormalizePassword(password))
}

// hmac is the store's keyed hash: what it keeps instead of a secret (a password, a creator key), so
// that nothing in memory gives the secret back. Each kind of secret has its own prefix in msg.
func (s *Store) hmac(msg string) string {
	m := hmac.New(sha256.New, s.pwKey)
	m.Write([]byte(msg))
	return base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails: see randIntn
	return hex.EncodeToString(b)
}

// getRoom returns the live room with that id.
func (s *Store) getRoom(id string) (*room, bool) {
	v, ok := s.c.Get(roomPrefix + id)
	if !ok {
		return nil, false
	}
	r := v.(*room)
	if r.closed.Load() {
		return nil, false
	}
	return r, true
}

// roomOf returns the live room the member is in. Callers hold mu.
func (s *Store) roomOf(key string) (*room, int, bool) {
	v, ok := s.c.Get(memberPrefix + key)
	if !ok {
		return nil, -1, false
	}
	r, ok := s.getRoom(v.(string))
	if !ok {
		return nil, -1, false
	}
	for i := range r.members {
		if r.members[i].Key() == key {
			return r, i, true
		}
	}
	return nil, -1, false
}

// PasswordFree says whether no live room uses the password.
func (s *Store) PasswordFree(password string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.passwordFree(s.keyOf(password))
}

func (s *Store) passwordFree(pwKey string) bool {
	v, ok := s.c.Get(passwordPrefix + pwKey)
	if !ok {
		return true
	}
	_, live := s.getRoom(v.(string))
	return !live
}

// Open creates a room with the creator as its first member.
func (s *Store) Open(creator Member, password string) (Room, Member, error) {
	if err := CheckPassword(password); err != nil {
		return Room{}, Member{}, err
	}
	pwKey := s.keyOf(password)
	s.mu.Lock()
	if _, _, in := s.roomOf(creator.Key()); in {
		s.mu.Unlock()
		return Room{}, Member{}, ErrAlreadyInRoom
	}
	if !s.passwordFree(pwKey) {
		s.mu.Unlock()
		return Room{}, Member{}, ErrPasswordTaken
	}
	now := s.now()
	r := &room{
		id:        newID(),
		pwKey:     pwKey,
		creator:   creator.Key(),
		openedAt:  now,
		expiresAt: now.Add(s.cfg.Lifetime),
	}
	creator.Nick = uniqueNick(r.members)
	r.members = append(r.members, creator)
	// The cache item expires with the room; the timer below is what announces it on time.
	s.c.Set(roomPrefix+r.id, r, s.cfg.Lifetime)
	s.c.Set(passwordPrefix+pwKey, r.id, s.cfg.Lifetime)
	s.c.Set(memberPrefix+creator.Key(), r.id, cache.NoExpiration)
	s.openBook(r, creator.Key())
	s.schedule(r, s.cfg.Lifetime)
	snap := r.snapshot()
	s.mu.Unlock()
	s.rooms.Add(1)
	s.members.Add(1)
	return snap, creator, nil
}

// schedule (re)arms r's end and warnings, left from now; older timers are stopped. Callers hold mu
// (or own r alone, as Open does).
func (s *Store) schedule(r *room, left time.Duration) {
	for _, t := range r.timers {
		t.Stop()
	}
	r.gen++
	gen := r.gen
	r.timers = append(r.timers[:0], time.AfterFunc(left, func() { s.expire(r, gen) }))
	for _, w := range s.cfg.Warnings {
		if w < left {
			r.timers = append(r.timers, time.AfterFunc(left-w, func() { s.warn(r, w, gen) }))
		}
	}
}

// expire closes r when its end comes, unless an extension rescheduled it meanwhile: deciding under
// mu makes "extended" and "expired" exclusive, so an extension that was paid for is never lost.
func (s *Store) expire(r *room, gen int) {
	s.mu.Lock()
	if r.gen != gen || !r.closed.CompareAndSwap(false, true) {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.finishClose(r, Expired)
}

func (s *Store) warn(r *room, left time.Duration, gen int) {
	s.mu.RLock()
	if r.closed.Load() || r.gen != gen {
		s.mu.RUnlock()
		return
	}
	snap := r.snapshot()
	s.mu.RUnlock()
	if s.ev != nil {
		s.ev.RoomEnding(snap, left)
	}
}

// close ends r once, whichever of its timer, the cache, Destroy or CloseAll gets there first.
func (s *Store) close(r *room, why Reason) {
	if !r.closed.CompareAndSwap(false, true) {
		return
	}
	s.finishClose(r, why)
}

// finishClose is close once r is marked closed.
func (s *Store) finishClose(r *room, why Reason) {
	s.mu.Lock()
	r.reason = why
	for k := range r.tokens {
		s.c.Delete(tokenPrefix + k)
	}
	for _, t := range r.timers {
		t.Stop()
	}
	for _, m := range r.members {
		if v, ok := s.c.Get(memberPrefix + m.Key()); ok && v.(string) == r.id {
			s.c.Delete(memberPrefix + m.Key())
		}
	}
	if v, ok := s.c.Get(passwordPrefix + r.pwKey); ok && v.(string) == r.id {
		s.c.Delete(passwordPrefix + r.pwKey)
	}
	if r.ckKey != "" {
		s.c.Delete(creatorPrefix + r.ckKey)
	}
	snap := r.snapshot()
	s.mu.Unlock()
	// Outside mu: go-cache calls evicted synchronously from Delete, and evicted may call close.
	s.c.Delete(roomPrefix + r.id)
	s.bookClose(r)
	s.rooms.Add(-1)
	s.members.Add(-int64(len(snap.Members)))
	if s.ev != nil {
		s.ev.RoomClosed(snap, why)
	}
}

// Join adds m to the live room with that password or join token (see NewToken). origin is where the
// attempt came from (Inbound.Origin; "" when the identity is the only source there is). Password and
// token are tried in one call, so a wrong token counts against the same guess limits as a wrong
// password. Past any of the limits nothing is looked at: the answer is a *ThrottledError, whether the
// secret was right or not.
func (s *Store) Join(secret string, m Member, origin string) (Room, Member, error) {
	key := m.Key()
	pwKey, tokKey := s.keyOf(secret), s.tokenKey(secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, in := s.roomOf(key); in {
		return Room{}, Member{}, ErrAlreadyInRoom
	}
	if err := s.throttled(key, origin); err != nil {
		return Room{}, Member{}, err
	}
	r, tok, byToken := s.tokenRoom(tokKey)
	if r == nil {
		if v, ok := s.c.Get(passwordPrefix + pwKey); ok {
			r, _ = s.getRoom(v.(string))
		}
	}
	if r == nil {
		s.count(key, origin)
		return Room{}, Member{}, ErrWrongPassword
	}
	switch {
	case r.kicked[key]:
		return Room{}, Member{}, ErrKicked
	case r.locked:
		return Room{}, Member{}, ErrLocked
	case len(r.members) >= s.cfg.MaxMembers:
		return Room{}, Member{}, ErrRoomFull
	}
	if byToken && tok.once {
		delete(r.tokens, tokKey)
		s.c.Delete(tokenPrefix + tokKey)
	}
	m.Nick = uniqueNick(r.members)
	r.members = append(r.members, m)
	s.c.Set(memberPrefix+key, r.id, cache.NoExpiration)
	s.bookJoin(r.id, key)
	s.members.Add(1)
	return r.snapshot(), m, nil
}

// Leave takes the member out of their room.
func (s *Store) Leave(key string) (Room, Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, i, ok := s.roomOf(key)
	if !ok {
		return Room{}, Member{}, ErrNotInRoom
	}
	m := r.members[i]
	r.members = append(r.members[:i:i], r.members[i+1:]...)
	s.c.Delete(memberPrefix + key)
	s.bookLeave(r.id, key)
	s.members.Add(-1)
	return r.snapshot(), m, nil
}

// RoomOf returns the member's room and their entry in it.
func (s *Store) RoomOf(key string) (Room, Member, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, i, ok := s.roomOf(key)
	if !ok {
		return Room{}, Member{}, ErrNotInRoom
	}
	return r.snapshot(), r.members[i], nil
}

// Rename gives the member a new pseudonym.
func (s *Store) Rename(key, nick string) (Room, Member, Member, error) {
	nick, err := CleanNick(nick)
	if err != nil {
		return Room{}, Member{}, Member{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, i, ok := s.roomOf(key)
	if !ok {
		return Room{}, Member{}, Member{}, ErrNotInRoom
	}
	for j, o := range r.members {
		if j != i && sameNick(o.Nick, nick) {
			return Room{}, Member{}, Member{}, ErrNickTaken
		}
	}
	old := r.members[i]
	r.members[i].Nick = nick
	return r.snapshot(), old, r.members[i], nil
}

// Destroy ends the member's room now, if they created it. RoomClosed is called before it returns.
func (s *Store) Destroy(key string) (Room, error) {
	s.mu.RLock()
	r, _, ok := s.roomOf(key)
	s.mu.RUnlock()
	if !ok {
		return Room{}, ErrNotInRoom
	}
	if r.creator != key {
		return Room{}, ErrNotCreator
	}
	snap := r.snapshot()
	s.close(r, Destroyed)
	return snap, nil
}

// CloseAll ends every room (kumo is stopping); RoomClosed is called for each.
func (s *Store) CloseAll() int {
	n := 0
	for k, it := range s.c.Items() {
		if strings.HasPrefix(k, roomPrefix) {
			r := it.Object.(*room)
			if !r.closed.Load() {
				s.close(r, Shutdown)
				n++
			}
		}
	}
	return n
}

// Counts is how many rooms are open and how many members they have.
func (s *Store) Counts() (rooms, members int) {
	return int(s.rooms.Load()), int(s.members.Load())
}

// uniqueNick draws a pseudonym nobody in the room has.
func uniqueNick(members []Member) string {
	for {
		n := randomPseudonym()
		taken := false
		for _, m := range members {
			if sameNick(m.Nick, n) {
				taken = true
				break
			}
		}
		if !taken {
			return n
		}
	}
}
