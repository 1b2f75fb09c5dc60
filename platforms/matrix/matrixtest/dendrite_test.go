package matrixtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func TestStartRegister(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	uid, err := s.Register(ctx, "alice", "password-alice")
	if err != nil {
		t.Fatal(err, s.Logs())
	}
	if uid != UserID("alice") {
		t.Fatalf("registered %s, want %s", uid, UserID("alice"))
	}
}

// TestRestart: after Restart the same URL answers, with the same accounts, access tokens, rooms and
// sync positions: a syncing client resumes where it was (no event replayed), can send again, and
// the user can still log in.
func TestRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"alice", "bob"} {
		if _, err := s.Register(ctx, name, "password-"+name); err != nil {
			t.Fatal(err, s.Logs())
		}
	}
	alice, err := s.Login(ctx, "alice", "password-alice")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	room, err := alice.CreateDM(ctx, UserID("bob"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.SendText(ctx, room, "before the restart"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(ctx, isText(room, "before the restart")); err != nil {
		t.Fatal(err)
	}
	url := s.URL
	old := s.proc

	begin := time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted in %s", time.Since(begin).Round(time.Millisecond))
	select {
	case <-old.exited:
	default:
		t.Fatal("the old dendrite is still running")
	}
	if s.URL != url || s.proc.cmd.Process.Pid == old.cmd.Process.Pid {
		t.Fatalf("after restart: URL %s (was %s), pid %d (was %d)", s.URL, url, s.proc.cmd.Process.Pid, old.cmd.Process.Pid)
	}

	// The access token from before still works, so the device and its session survived.
	if err := alice.SendText(ctx, room, "after the restart"); err != nil {
		t.Fatal(err, s.Logs())
	}
	// alice's sync loop failed while the server was down and resumes from its since token.
	if _, err := alice.WaitEvent(ctx, isText(room, "after the restart")); err != nil {
		t.Fatal(err, s.Logs())
	}
	var texts []string
	for _, e := range alice.Messages(room, alice.ID) {
		texts = append(texts, e.Content.AsMessage().Body)
	}
	if want := []string{"before the restart", "after the restart"}; !slices.Equal(texts, want) {
		t.Errorf("alice's timeline: %q, want %q (replayed or lost across the restart)", texts, want)
	}
	// The password (account database) survived too: bob logs in and sees the room's history.
	bob, err := s.Login(ctx, "bob", "password-bob")
	if err != nil {
		t.Fatal(err, s.Logs())
	}
	defer bob.Close()
	if _, err := bob.WaitEvent(ctx, func(e *event.Event) bool {
		return e.RoomID == room && e.Type == event.StateMember && e.Content.AsMember().Membership == event.MembershipInvite
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Client.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(ctx, isText(room, "after the restart")); err != nil {
		t.Fatal(err)
	}
}

func isText(room id.RoomID, body string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		if e.RoomID != room || e.Type != event.EventMessage {
			return false
		}
		c := e.Content.AsMessage()
		return c != nil && c.Body == body
	}
}
