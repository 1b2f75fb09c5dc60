package main

import (
	"context"
	"log/slog"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/platforms/discord"
	"github.com/kumo-chat/kumo/platforms/matrix"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/web"
)

// The two tables below are all kumo knows about its parts. Adding a platform is one package under
// platforms/ (a Config with Validate, a New from it) and one row here; its YAML section, KUMO_*
// variables, flags, unknown-key checks and error report all follow from the row and the Config's
// yaml tags.

// platforms is every messenger kumo can run, by YAML section (the package's Name).
func platforms() []platformRow {
	return []platformRow{
		platformOf(telegram.Name, func(c telegram.Config, log *slog.Logger, _ wiring) (bridge.Platform, error) {
			return telegram.New(c, log)
		}),
		platformOf(discord.Name, func(c discord.Config, log *slog.Logger, _ wiring) (bridge.Platform, error) {
			return discord.New(c, log)
		}),
		platformOf(matrix.Name, func(c matrix.Config, log *slog.Logger, _ wiring) (bridge.Platform, error) {
			return matrix.New(c, log)
		}),
		// The web chat runs when no other platform is configured (web.enabled: false turns it off).
		platformOf(web.Name, func(c web.Config, log *slog.Logger, w wiring) (bridge.Platform, error) {
			proxies, _ := web.ParseTrustedProxies(w.http.TrustedProxies) // validated already
			opts := []web.Option{web.WithTrustedProxies(proxies), web.WithListenAddr(w.http.Listen)}
			if w.simulate != nil {
				opts = append(opts, web.WithSimulatedPayments(w.simulate))
			}
			return web.New(c, log, opts...)
		}).onAlone(),
	}
}

// backends is every payment backend, by its lightning.backend name; a backend with a Config reads
// it from lightning.<name>.
func backends() []backendRow {
	return []backendRow{
		backendOf(lightning.DevName, func(_ context.Context, _ struct{}, log *slog.Logger) (bridge.Payments, error) {
			return lightning.NewDev(log), nil
		}).noConfig(),
		backendOf("lnd", func(ctx context.Context, c lnd.Config, log *slog.Logger) (bridge.Payments, error) {
			return lnd.New(ctx, c, log)
		}),
	}
}
