package discord

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/bridge/platformtest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// contract runs the shared Platform contract against the Discord fake.
type contract struct {
	e     *env
	users atomic.Int64
}

func (c *contract) Platform() bridge.Platform { return c.e.a }

func (c *contract) User(t *testing.T) bridge.Addr {
	u := c.e.fake.AddUser(fmt.Sprintf("contract%d", c.users.Add(1)))
	return bridge.Addr{Platform: Name, User: u.ID, Chat: c.e.fake.DMChannel(u.ID)}
}

func (c *contract) Shown(t *testing.T, _ context.Context, to bridge.Addr) []platformtest.Shown {
	var out []platformtest.Shown
	for _, m := range c.e.fake.Messages(to.Chat) {
		if m.AuthorID != to.User {
			out = append(out, platformtest.Shown{ID: bridge.MessageID(m.ID), Text: m.Content, Image: len(m.Attachments) > 0})
		}
	}
	return out
}

func (c *contract) Gone(t *testing.T, to bridge.Addr) { c.e.fake.SetDMsClosed(to.User, true) }

// RateLimit spends the DM's route bucket as another client of the same bot would, so that the
// adapter's next send there meets Discord's 429.
func (c *contract) RateLimit(t *testing.T, to bridge.Addr) {
	for range 20 {
		req, _ := http.NewRequest(http.MethodPost, c.e.fake.URL+"/api/v9/channels/"+to.Chat+"/messages", strings.NewReader(`{"content":"elsewhere"}`))
		req.Header.Set("Authorization", "Bot "+c.e.fake.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("the fake never rate-limited the DM")
}

func TestPlatformContract(t *testing.T) {
	platformtest.Run(t, func(t *testing.T) platformtest.Harness {
		e := newEnv(t, discordtest.Options{})
		e.run(t, &bridgetest.Inbox{})
		return &contract{e: e}
	})
}
