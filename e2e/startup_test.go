package e2e

import (
	"testing"
	"time"

	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// BenchmarkStartup: exec of the binary to /healthz answering 200, with Telegram, Discord and the
// web chat configured (development payments).
func BenchmarkStartup(b *testing.B) {
	var total time.Duration
	for b.Loop() {
		tg := telegramtest.New(b)
		dc := discordtest.New(discordtest.Options{})
		k := startKumo(b, setup{Lifetime: time.Hour, Telegram: tg, Discord: dc, Web: true})
		total += k.startup
		k.stop(time.Minute)
		dc.Close()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/startup")
	b.ReportMetric(0, "ns/op")
}
