package telegram_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/bridge/platformtest"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// harness runs the shared Platform contract against the Bot API fake.
type harness struct {
	s     *telegramtest.Server
	a     *telegram.Adapter
	users atomic.Int64
}

func (h *harness) Platform() bridge.Platform { return h.a }

func (h *harness) User(t *testing.T) bridge.Addr {
	u := telegramtest.User{ID: 5000 + h.users.Add(1), FirstName: "Contract"}
	h.s.Inject(telegramtest.Incoming{From: u, Text: "/start"}) // a bot can write only to who started it
	return addr(u)
}

func (h *harness) Shown(t *testing.T, _ context.Context, to bridge.Addr) []platformtest.Shown {
	id, _ := strconv.ParseInt(to.Chat, 10, 64)
	var out []platformtest.Shown
	photos := map[int]bool{}
	for _, m := range h.s.Sent(id) {
		photos[m.MessageID] = m.Method == "sendPhoto"
	}
	for _, m := range h.s.Shows(id) {
		if !m.Incoming {
			out = append(out, platformtest.Shown{ID: bridge.MessageID(strconv.Itoa(m.MessageID)), Text: m.Text, Image: photos[m.MessageID]})
		}
	}
	return out
}

func (h *harness) Gone(t *testing.T, to bridge.Addr) {
	id, _ := strconv.ParseInt(to.User, 10, 64)
	h.s.Block(id)
}

func (h *harness) RateLimit(t *testing.T, _ bridge.Addr) {
	h.s.FailNext("sendMessage", 1, 429, "Too Many Requests: retry after 2", 2)
}

func TestPlatformContract(t *testing.T) {
	platformtest.Run(t, func(t *testing.T) platformtest.Harness {
		s := telegramtest.New(t, telegramtest.WithLimits(fakeLimits()))
		a := newAdapter(t, s, telegram.WithPacing(pacingFor(fakeLimits())))
		bridgetest.Background(t, "telegram adapter", func(ctx context.Context) error { return a.Run(ctx, &bridgetest.Inbox{}) })
		ctx := deadline(t)
		if err := s.WaitCalls(ctx, "setMyCommands", 1); err != nil {
			t.Fatal(err)
		}
		return &harness{s: s, a: a}
	})
}
