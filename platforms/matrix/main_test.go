package matrix

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
)

// The package's tests share one fresh Dendrite; every test registers its own users and bot.
var hs *matrixtest.Server

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	s, err := matrixtest.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix tests: cannot start Dendrite:", err)
		os.Exit(1)
	}
	hs = s
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "dendrite output (tail):\n"+s.Logs())
	}
	_ = s.Close()
	os.Exit(code)
}

var userSeq atomic.Int64

// register makes a new user with a unique name and returns its localpart and password.
func register(t testing.TB, ctx context.Context, prefix string) (string, string) {
	t.Helper()
	local := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
	pw := "pw-" + local + "-secret"
	if _, err := hs.Register(ctx, local, pw); err != nil {
		t.Fatal(err)
	}
	return local, pw
}

// bot is a running adapter for one test.
type bot struct {
	a      *Adapter
	id     id.UserID
	joined chan id.RoomID // rooms whose join the adapter's own sync has shown
	levels chan id.RoomID // rooms whose new m.room.power_levels the adapter's own sync has shown
}

// newBot registers a bot user and makes an adapter for it (not running yet).
func newBot(t testing.TB, ctx context.Context, homeserver string, opts ...Option) *bot {
	t.Helper()
	local, pw := register(t, ctx, "kumo")
	b := &bot{id: matrixtest.UserID(local), joined: make(chan id.RoomID, 16), levels: make(chan id.RoomID, 16)}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := New(Config{Homeserver: homeserver, UserID: b.id.String(), Password: pw}, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	a.observe = func(evt *event.Event) {
		if evt.Type == event.StateMember && evt.GetStateKey() == b.id.String() &&
			evt.Mautrix.EventSource&event.SourceTimeline != 0 && evt.Content.AsMember().Membership == event.MembershipJoin {
			b.joined <- evt.RoomID
		}
		if evt.Type == event.StatePowerLevels && evt.Mautrix.EventSource&event.SourceTimeline != 0 {
			select {
			case b.levels <- evt.RoomID:
			default: // nobody is waiting for it
			}
		}
	}
	b.a = a
	return b
}

// waitReady waits until the adapter is logged in, or its Run ended.
func (b *bot) waitReady(t testing.TB, ctx context.Context, run *bridgetest.Running) {
	t.Helper()
	select {
	case <-b.a.ready:
	case <-run.Done():
		t.Fatalf("Run ended before connecting: %v", run.Err())
	case <-ctx.Done():
		t.Fatal("adapter did not connect")
	}
}

// startBot runs a new bot's adapter with h until the test ends.
func startBot(t testing.TB, ctx context.Context, h bridge.Handler, opts ...Option) *bot {
	t.Helper()
	return startBotAt(t, ctx, hs.URL, h, opts...)
}

// startBotAt is startBot with the bot reaching the homeserver at homeserver (a proxy).
func startBotAt(t testing.TB, ctx context.Context, homeserver string, h bridge.Handler, opts ...Option) *bot {
	t.Helper()
	b := newBot(t, ctx, homeserver, opts...)
	run := bridgetest.Background(t, "matrix adapter", func(ctx context.Context) error { return b.a.Run(ctx, h) })
	b.waitReady(t, ctx, run)
	return b
}

// login registers and logs in a test user (an encrypting mautrix client).
func login(t testing.TB, ctx context.Context, prefix string) *matrixtest.User {
	t.Helper()
	local, pw := register(t, ctx, prefix)
	u, err := hs.Login(ctx, local, pw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

// aliceDM runs a bot recording what it hands the core, and has a new user "alice" open a DM with it;
// me is her address there.
func aliceDM(t testing.TB, ctx context.Context, encrypted bool) (rec *bridgetest.Inbox, b *bot, alice *matrixtest.User, room id.RoomID, me bridge.Addr) {
	t.Helper()
	return aliceDMAt(t, ctx, hs.URL, encrypted)
}

// aliceDMAt is aliceDM with the bot reaching the homeserver at homeserver (a proxy).
func aliceDMAt(t testing.TB, ctx context.Context, homeserver string, encrypted bool) (rec *bridgetest.Inbox, b *bot, alice *matrixtest.User, room id.RoomID, me bridge.Addr) {
	t.Helper()
	rec = &bridgetest.Inbox{}
	b = startBotAt(t, ctx, homeserver, rec)
	alice = login(t, ctx, "alice")
	room = openDM(t, ctx, alice, b, encrypted)
	return rec, b, alice, room, bridge.Addr{Platform: Name, User: alice.ID.String(), Chat: room.String()}
}

// openDM has u open a DM with the bot and waits until both sides' syncs have shown the bot's join.
// Dendrite's /sync can leave out an event sent while the receiver's sync is still catching up with
// its own join; waiting for both views makes the next message land in a steady incremental sync.
func openDM(t testing.TB, ctx context.Context, u *matrixtest.User, b *bot, encrypted bool) id.RoomID {
	t.Helper()
	return openDMPreset(t, ctx, u, b, encrypted, "trusted_private_chat")
}

// openDMPreset is openDM with the room created with preset.
func openDMPreset(t testing.TB, ctx context.Context, u *matrixtest.User, b *bot, encrypted bool, preset string) id.RoomID {
	t.Helper()
	room, err := u.CreateDMPreset(ctx, b.id, encrypted, preset)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.WaitJoined(ctx, room, b.id); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case r := <-b.joined:
			if r == room {
				return room
			}
		case <-ctx.Done():
			t.Fatalf("the bot's sync never showed its join of %s", room)
		}
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
