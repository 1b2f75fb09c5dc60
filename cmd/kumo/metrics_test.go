package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// A join attempt a guess limit refuses shows in /metrics as kumo_join_attempts_throttled_total, with
// no label that could tell who or where it came from.
func TestMetricsCountThrottledJoins(t *testing.T) {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	cfg.Rooms.MaxFailuresPerOrigin = 1
	p := bridgetest.New("p", bridge.Limits{MaxText: 4096})
	b, err := bridge.New(cfg, nil, slog.New(slog.DiscardHandler), p)
	if err != nil {
		t.Fatal(err)
	}
	bridgetest.Run(t, b)
	for i, want := range []string{"No live room has that password", "Busy:", "Busy:"} {
		u := p.User(string(rune('a' + i)))
		p.SayFrom(t, u, "ip:192.0.2.1", "/join some wrong guess")
		p.WaitFor(t, u.Chat, 5*time.Second, want, func(ms []bridge.Message) bool {
			return len(ms) > 0 && strings.Contains(ms[0].Text, want)
		})
	}

	rec := httptest.NewRecorder()
	metricsHandler(b).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), "\nkumo_join_attempts_throttled_total 2\n") {
		t.Fatalf("/metrics lacks kumo_join_attempts_throttled_total 2:\n%s", body)
	}
}
