package matrix

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
)

// TestJoinByTokenThroughCore: /invite names the bot's matrix.to link and the token; a Matrix user
// who sends the bare token in their DM with the bot joins the room.
func TestJoinByTokenThroughCore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	b := newBot(t, ctx, hs.URL)
	br, err := bridge.New(cfg, lightning.NewDev(log), log, b.a)
	if err != nil {
		t.Fatal(err)
	}
	b.waitReady(t, ctx, bridgetest.Background(t, "bridge", br.Run))

	alice, bob := login(t, ctx, "alice"), login(t, ctx, "bob")
	aliceDM, bobDM := openDM(t, ctx, alice, b, true), openDM(t, ctx, bob, b, false)
	if err := alice.SendText(ctx, aliceDM, "/newroom"); err != nil {
		t.Fatal(err)
	}
	message(t, ctx, alice, aliceDM, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "room is open") })
	if err := alice.SendText(ctx, aliceDM, "/invite"); err != nil {
		t.Fatal(err)
	}
	answer := message(t, ctx, alice, aliceDM, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "Invite links") })
	m := regexp.MustCompile(`matrix: https://matrix\.to/#/` + regexp.QuoteMeta(string(b.id)) + ` then send: /join ([A-Za-z0-9_-]{22})`).FindStringSubmatch(answer.Body)
	if m == nil {
		t.Fatalf("no matrix.to invite for %s in %q", b.id, answer.Body)
	}
	if err := bob.SendText(ctx, bobDM, m[1]); err != nil {
		t.Fatal(err)
	}
	message(t, ctx, bob, bobDM, b.id, func(c *event.MessageEventContent) bool { return strings.HasPrefix(c.Body, "You joined the room as ") })
}
