package rooms_test

import (
	"errors"
	"testing"

	"github.com/kumo-chat/kumo/rooms"
)

func TestReclaim(t *testing.T) {
	const pw = "a password long enough"
	tests := []struct {
		name string
		// setup runs after a (the creator) opened the room with b in it; it returns the key to use.
		setup func(t *testing.T, s *rooms.Store, key string) string
		who   string
		want  func(t *testing.T, s *rooms.Store, got rooms.Reclaimed)
		err   error
	}{
		{
			name: "a new chat takes over the creator's seat",
			who:  "a2",
			want: func(t *testing.T, s *rooms.Store, got rooms.Reclaimed) {
				if !got.Moved || got.Replaced.User != "a" || got.Joined || got.Already {
					t.Errorf("got %+v", got)
				}
				if len(got.Room.Members) != 2 || got.Room.Creator != member("a2").Key() {
					t.Errorf("room %+v", got.Room)
				}
				if _, _, err := s.RoomOf(member("a").Key()); !errors.Is(err, rooms.ErrNotInRoom) {
					t.Errorf("the old seat is still in a room: %v", err)
				}
				if got.Me.Nick != got.Replaced.Nick {
					t.Errorf("the creator's pseudonym changed: %q -> %q", got.Replaced.Nick, got.Me.Nick)
				}
				if _, err := s.Destroy(member("a").Key()); !errors.Is(err, rooms.ErrNotInRoom) {
					t.Errorf("old seat destroys: %v", err)
				}
			},
		},
		{
			name: "after the creator left, the reclaimer joins as creator",
			setup: func(t *testing.T, s *rooms.Store, key string) string {
				if _, _, err := s.Leave(member("a").Key()); err != nil {
					t.Fatal(err)
				}
				return key
			},
			who: "a2",
			want: func(t *testing.T, s *rooms.Store, got rooms.Reclaimed) {
				if !got.Joined || got.Moved || len(got.Room.Members) != 2 {
					t.Errorf("got %+v", got)
				}
				if _, err := s.Destroy(member("a2").Key()); err != nil {
					t.Errorf("the reclaimer cannot destroy: %v", err)
				}
			},
		},
		{
			name: "a member reclaims: the old creator's seat goes",
			who:  "b",
			want: func(t *testing.T, s *rooms.Store, got rooms.Reclaimed) {
				if !got.Moved || got.Replaced.User != "a" || len(got.Room.Members) != 1 || got.Room.Creator != member("b").Key() {
					t.Errorf("got %+v", got)
				}
			},
		},
		{
			name: "the creator reclaims: nothing changes",
			who:  "a",
			want: func(t *testing.T, s *rooms.Store, got rooms.Reclaimed) {
				if !got.Already || len(got.Room.Members) != 2 {
					t.Errorf("got %+v", got)
				}
			},
		},
		{
			name:  "a wrong key",
			setup: func(*testing.T, *rooms.Store, string) string { return "kumo-aaaaaaaaaaaaaaaaaaaaaaaaaa" },
			who:   "x",
			err:   rooms.ErrWrongCreatorKey,
		},
		{
			name: "a replaced key stops working",
			setup: func(t *testing.T, s *rooms.Store, key string) string {
				if _, err := s.NewCreatorKey(member("a").Key()); err != nil {
					t.Fatal(err)
				}
				return key
			},
			who: "x",
			err: rooms.ErrWrongCreatorKey,
		},
		{
			name: "someone in another room",
			setup: func(t *testing.T, s *rooms.Store, key string) string {
				if _, _, err := s.Open(member("x"), "another long password"); err != nil {
					t.Fatal(err)
				}
				return key
			},
			who: "x",
			err: rooms.ErrAlreadyInRoom,
		},
		{
			name: "a full room, the creator gone",
			setup: func(t *testing.T, s *rooms.Store, key string) string {
				if _, _, err := s.Leave(member("a").Key()); err != nil {
					t.Fatal(err)
				}
				for _, id := range []string{"c", "d"} {
					if _, _, err := s.Join(pw, member(id), ""); err != nil {
						t.Fatal(err)
					}
				}
				return key
			},
			who: "x",
			err: rooms.ErrRoomFull,
		},
		{
			name: "the key of a destroyed room",
			setup: func(t *testing.T, s *rooms.Store, key string) string {
				if _, err := s.Destroy(member("a").Key()); err != nil {
					t.Fatal(err)
				}
				return key
			},
			who: "a2",
			err: rooms.ErrWrongCreatorKey,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, rooms.Config{MaxMembers: 3}, nil)
			if _, _, err := s.Open(member("a"), pw); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Join(pw, member("b"), ""); err != nil {
				t.Fatal(err)
			}
			if _, err := s.NewCreatorKey(member("b").Key()); !errors.Is(err, rooms.ErrNotCreator) {
				t.Errorf("a member got a creator key: %v", err)
			}
			key, err := s.NewCreatorKey(member("a").Key())
			if err != nil {
				t.Fatal(err)
			}
			if !rooms.LooksLikeCreatorKey(key) || rooms.LooksLikeCreatorKey(pw) {
				t.Errorf("LooksLikeCreatorKey(%q) false or true for the password", key)
			}
			if tc.setup != nil {
				key = tc.setup(t, s, key)
			}
			got, err := s.Reclaim(key, member(tc.who), "")
			if !errors.Is(err, tc.err) {
				t.Fatalf("Reclaim: %v, want %v", err, tc.err)
			}
			if _, members := s.Counts(); err == nil && members != len(got.Room.Members) {
				t.Errorf("member count %d, room has %d", members, len(got.Room.Members))
			}
			if tc.want != nil {
				tc.want(t, s, got)
			}
		})
	}
}

func TestReclaimWrongKeysAreThrottled(t *testing.T) {
	s := newStore(t, rooms.Config{MaxFailures: 2}, nil)
	for range 2 {
		if _, err := s.Reclaim("kumo-aaaaaaaaaaaaaaaaaaaaaaaaaa", member("x"), ""); !errors.Is(err, rooms.ErrWrongCreatorKey) {
			t.Fatal(err)
		}
	}
	var th *rooms.ThrottledError
	if _, err := s.Reclaim("kumo-aaaaaaaaaaaaaaaaaaaaaaaaaa", member("x"), ""); !errors.As(err, &th) {
		t.Fatalf("third wrong key: %v, want throttled", err)
	}
}
