// Package platforms_test holds tests across adapters.
package platforms_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// TestMenusAndHelpAgree: one core runs the Telegram adapter (on its fake Bot API), the Discord
// adapter (on its fake) and a plain platform; Telegram's setMyCommands, Discord's registered
// application commands and /help name the same commands, in the same order, with the same texts
// (the configured lifetime in them).
func TestMenusAndHelpAgree(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tgFake := telegramtest.New(t)
	tg, err := telegram.New(telegram.Config{Token: tgFake.Token(), APIURL: tgFake.URL()}, log,
		telegram.WithPolling(2*time.Second, &http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	dcFake := discordtest.New(discordtest.Options{})
	t.Cleanup(dcFake.Close)
	dc, err := discord.New(discord.Config{Token: dcFake.Token(), APIURL: dcFake.URL}, log)
	if err != nil {
		t.Fatal(err)
	}
	plain := bridgetest.New("plain", bridge.Limits{MaxText: 4096})
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	cfg.Rooms.Lifetime = 3 * time.Hour
	b, err := bridge.New(cfg, nil, log, tg, dc, plain)
	if err != nil {
		t.Fatal(err)
	}
	bridgetest.Run(t, b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tgFake.WaitCalls(ctx, "setMyCommands", 1); err != nil {
		t.Fatal(err)
	}
	if err := dcFake.Wait(ctx, func() bool { return len(dcFake.Commands()) > 0 }); err != nil {
		t.Fatal(err)
	}
	var tgMenu []struct{ Command, Description string }
	if err := json.Unmarshal(tgFake.Commands(), &tgMenu); err != nil {
		t.Fatal(err)
	}
	var dcMenu []struct{ Name, Description string }
	for _, raw := range dcFake.Commands() {
		var c struct{ Name, Description string }
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		dcMenu = append(dcMenu, c)
	}
	u := plain.User("u")
	plain.Say(t, u, "/help")
	help := plain.WaitText(t, u.Chat, "/newroom").Text
	var helpLines []string
	for _, l := range strings.Split(help, "\n") {
		if strings.HasPrefix(l, "/") {
			helpLines = append(helpLines, l)
		}
	}

	if len(tgMenu) != len(helpLines) || len(dcMenu) != len(helpLines) {
		t.Fatalf("telegram %d, discord %d, /help %d commands", len(tgMenu), len(dcMenu), len(helpLines))
	}
	for i, line := range helpLines {
		// "/name[ args]: description"
		head, desc, _ := strings.Cut(line, ": ")
		name, args, _ := strings.Cut(strings.TrimPrefix(head, "/"), " ")
		tgWant := desc
		if args != "" {
			tgWant = args + ": " + desc
		}
		if tgMenu[i].Command != name || tgMenu[i].Description != tgWant {
			t.Errorf("telegram %d: %q %q, /help says %q", i, tgMenu[i].Command, tgMenu[i].Description, line)
		}
		if dcMenu[i].Name != name || dcMenu[i].Description != desc {
			t.Errorf("discord %d: %q %q, /help says %q", i, dcMenu[i].Name, dcMenu[i].Description, line)
		}
	}
	for _, want := range []string{"/invite", "/kick", "/lock", "/unlock", "/extend", "open a room for 3h"} {
		if !strings.Contains(help, want) {
			t.Errorf("/help lacks %q", want)
		}
	}
}
