package discord

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// wait bounds every condition a test waits for.
const wait = 20 * time.Second

// eventually polls cond until it holds, failing the test at the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// env is a fake Discord with an adapter pointed at it.
type env struct {
	fake *discordtest.Server
	a    *Adapter
	logs *bridgetest.LogBuffer
	log  *slog.Logger
}

func newEnv(t testing.TB, opts discordtest.Options, aopts ...Option) *env {
	t.Helper()
	fake := discordtest.New(opts)
	t.Cleanup(fake.Close)
	logs := &bridgetest.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(Config{Token: fake.Token(), APIURL: fake.URL}, log, aopts...)
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, a: a, logs: logs, log: log}
}

// run starts the adapter with h and waits until it is connected and its commands are registered. The
// returned function stops it and checks that Run returned nil.
func (e *env) run(t *testing.T, h bridge.Handler) (stop func()) {
	t.Helper()
	run := bridgetest.Background(t, "discord adapter", func(ctx context.Context) error { return e.a.Run(ctx, h) })
	e.waitReady(t, run)
	return run.Stop
}

func (e *env) waitReady(t testing.TB, run *bridgetest.Running) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := e.fake.Wait(ctx, func() bool {
		if run.Returned() {
			t.Fatalf("Run returned early: %v", run.Err())
		}
		return e.fake.Connected() && len(e.fake.Commands()) > 0
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitFake waits for a condition on the fake's state.
func (e *env) waitFake(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.fake.Wait(ctx, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// contents are the texts of a channel's messages from the bot.
func contents(ms []discordtest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Content
	}
	return out
}
