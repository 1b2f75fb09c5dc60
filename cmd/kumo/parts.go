package main

import (
	"context"
	"log/slog"
	"strings"

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
		// Each platform's identity is what its users know this deployment by (public parts only:
		// a Telegram token's bot id, a Discord token's first part), for lightning.lnd.instance.
		identifiedBy(platformOf(telegram.Name, func(c telegram.Config, log *slog.Logger, _ wiring) (bridge.Platform, error) {
			return telegram.New(c, log)
		}), func(c telegram.Config, _ httpConfig) string { return before(c.Token, ":") }),
		identifiedBy(platformOf(discord.Name, func(c discord.Config, log *slog.Logger, _ wiring) (bridge.Platform, error) {
			return discord.New(c, log)
		}), func(c discord.Config, _ httpConfig) string { return before(c.Token, ".") }),
		identifiedBy(platformOf(matrix.Name, func(c matrix.Config, log *slog.Logger, _ wiring) (bridge.Platform, error) {
			return matrix.New(c, log)
		}), func(c matrix.Config, _ httpConfig) string { return c.UserID }),
		// The web chat runs when no other platform is configured (web.enabled: false turns it off).
		identifiedBy(platformOf(web.Name, func(c web.Config, log *slog.Logger, w wiring) (bridge.Platform, error) {
			proxies, _ := web.ParseTrustedProxies(w.http.TrustedProxies) // validated already
			opts := []web.Option{web.WithTrustedProxies(proxies), web.WithListenAddr(w.listenAddr)}
			if w.simulate != nil {
				opts = append(opts, web.WithSimulatedPayments(w.simulate))
			}
			return web.New(c, log, opts...)
		}).onAlone(), func(_ web.Config, h httpConfig) string { return h.Listen }),
	}
}

// backends is every payment backend, by its lightning.backend name; a backend with a Config reads
// it from lightning.<name>.
func backends() []backendRow {
	return []backendRow{
		backendOf(lightning.DevName, func(_ context.Context, _ struct{}, log *slog.Logger) (bridge.Payments, error) {
			return lightning.NewDev(log), nil
		}).noConfig(),
		// A deployment's invoices carry its tag: unset, it follows from the platforms' identities.
		withDeployment(backendOf("lnd", func(ctx context.Context, c lnd.Config, log *slog.Logger) (bridge.Payments, error) {
			return lnd.New(ctx, c, log)
		}), func(c *lnd.Config, ids []string) {
			if c.Instance == "" {
				c.Instance = lnd.DefaultInstance(ids...)
			}
		}),
	}
}

// before is what comes before sep in s, or "" when sep is not there (then all of s may be secret).
func before(s, sep string) string {
	if head, _, ok := strings.Cut(s, sep); ok {
		return head
	}
	return ""
}
