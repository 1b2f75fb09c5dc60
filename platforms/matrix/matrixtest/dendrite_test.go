package matrixtest

import (
	"context"
	"testing"
	"time"
)

func TestStartRegister(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	uid, err := s.Register(ctx, "alice", "pw-alice")
	if err != nil {
		t.Fatal(err, s.Logs())
	}
	if uid != UserID("alice") {
		t.Fatalf("registered %s, want %s", uid, UserID("alice"))
	}
}
