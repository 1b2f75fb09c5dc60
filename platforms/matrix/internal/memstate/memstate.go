// Package memstate is mautrix's in-memory state store with its member reads made safe for
// concurrent use. mautrix v0.32.0's MemoryStateStore.GetRoomJoinedOrInvitedMembers ranges over a
// room's member map without its lock (a data race with the sync loop writing members, which the
// crypto machine hits when it encrypts), and returns every member ever seen, including those who
// left, so group sessions would be shared with people no longer in the room.
package memstate

import (
	"context"
	"sync"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Store is a mautrix.StateStore (and crypto.StateStore) kept in memory only.
type Store struct {
	*mautrix.MemoryStateStore

	// powerLevels serialises GetPowerLevels: mautrix's fills in the levels' create event while
	// holding only a read lock, so two concurrent readers write the same field.
	powerLevels sync.Mutex
}

// New returns an empty store.
func New() *Store {
	return &Store{MemoryStateStore: mautrix.NewMemoryStateStore().(*mautrix.MemoryStateStore)}
}

// GetPowerLevels returns a copy of the room's power levels (nil when unknown): the original hands out
// the stored content itself, which the sync loop's next power-level event replaces under readers.
func (s *Store) GetPowerLevels(ctx context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, error) {
	s.powerLevels.Lock()
	defer s.powerLevels.Unlock()
	pl, err := s.MemoryStateStore.GetPowerLevels(ctx, roomID)
	return pl.Clone(), err
}

// GetRoomMembers returns a copy of the room's member map (the original returns the live map).
func (s *Store) GetRoomMembers(ctx context.Context, roomID id.RoomID) (map[id.UserID]*event.MemberEventContent, error) {
	return s.GetAllMembers(ctx, roomID) // a copy taken under the store's lock
}

// GetRoomJoinedOrInvitedMembers returns the users who are joined or invited, as its name says.
func (s *Store) GetRoomJoinedOrInvitedMembers(ctx context.Context, roomID id.RoomID) ([]id.UserID, error) {
	members, err := s.GetAllMembers(ctx, roomID)
	if err != nil {
		return nil, err
	}
	ids := make([]id.UserID, 0, len(members))
	for uid, m := range members {
		if m != nil && (m.Membership == event.MembershipJoin || m.Membership == event.MembershipInvite) {
			ids = append(ids, uid)
		}
	}
	return ids, nil
}

// SetMembership replaces the member's record instead of changing it in place, so copies handed out
// by GetAllMembers are never written to.
func (s *Store) SetMembership(ctx context.Context, roomID id.RoomID, userID id.UserID, membership event.Membership) error {
	var m event.MemberEventContent
	if old, _ := s.TryGetMember(ctx, roomID, userID); old != nil {
		m = *old
	}
	m.Membership = membership
	return s.SetMember(ctx, roomID, userID, &m)
}

// ReplaceCachedMembers must go through this type's SetMembership, not the embedded one.
func (s *Store) ReplaceCachedMembers(ctx context.Context, roomID id.RoomID, evts []*event.Event, onlyMemberships ...event.Membership) error {
	_ = s.ClearCachedMembers(ctx, roomID, onlyMemberships...)
	for _, evt := range evts {
		mautrix.UpdateStateStore(ctx, s, evt)
	}
	if len(onlyMemberships) == 0 {
		_ = s.MarkMembersFetched(ctx, roomID)
	}
	return nil
}
