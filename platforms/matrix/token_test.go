package matrix

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
)

// TestAccessToken: a token works for one run of its device; the next run cannot reuse the device's
// published keys (kumo's were in memory) and stops with an error that tells the operator what to do.
func TestAccessToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	local, pw := register(t, ctx, "kumo")
	cli, err := mautrix.NewClient(hs.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	login, err := cli.Login(ctx, &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: local},
		Password:         pw,
		StoreCredentials: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Homeserver: hs.URL, UserID: matrixtest.UserID(local).String(), AccessToken: login.AccessToken, DeviceID: login.DeviceID.String()}
	log := slog.New(slog.DiscardHandler)

	first, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	run := bridgetest.Background(t, "first run with the token", func(ctx context.Context) error { return first.Run(ctx, &bridgetest.Inbox{}) })
	select {
	case <-first.ready:
	case <-run.Done():
		t.Fatalf("first run with the token: %v", run.Err())
	case <-ctx.Done():
		t.Fatal("first run did not get ready")
	}
	run.Stop()

	second, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	err = second.Run(ctx, &bridgetest.Inbox{})
	if err == nil || !strings.Contains(err.Error(), "log in with a password") {
		t.Fatalf("second run with the same token = %v, want an error explaining in-memory keys", err)
	}

	// The operator's token is not logged out by kumo.
	if _, err := cli.Whoami(ctx); err != nil {
		t.Errorf("the token no longer works after kumo stopped: %v", err)
	}
}

// A password the homeserver refuses is bridge.ErrUnauthorized (kumo stops and says what to check),
// not an error the bridge would retry.
func TestWrongPasswordIsUnauthorized(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	local, _ := register(t, ctx, "kumo")
	a, err := New(Config{Homeserver: hs.URL, UserID: matrixtest.UserID(local).String(), Password: "not the password"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(ctx, &bridgetest.Inbox{})
	if !errors.Is(err, bridge.ErrUnauthorized) || !strings.Contains(err.Error(), "matrix.password") {
		t.Fatalf("Run with a wrong password = %v, want bridge.ErrUnauthorized naming matrix.password", err)
	}
}
