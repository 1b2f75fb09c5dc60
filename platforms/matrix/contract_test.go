package matrix

import (
	"context"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/bridge/platformtest"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
)

// contract runs the shared Platform contract against Dendrite, the bot reaching it through a fault
// proxy (for M_LIMIT_EXCEEDED), each person a logged-in, encrypting client.
type contract struct {
	ctx   context.Context
	b     *bot
	rec   *bridgetest.Inbox
	proxy *matrixtest.FaultProxy
	mu    sync.Mutex
	users map[bridge.Addr]*matrixtest.User
}

func (c *contract) Platform() bridge.Platform { return c.b.a }

func (c *contract) User(t *testing.T) bridge.Addr {
	u := login(t, c.ctx, "contract")
	room := openDM(t, c.ctx, u, c.b, true)
	to := bridge.Addr{Platform: Name, User: u.ID.String(), Chat: room.String()}
	c.mu.Lock()
	c.users[to] = u
	c.mu.Unlock()
	return to
}

func (c *contract) user(to bridge.Addr) *matrixtest.User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.users[to]
}

func (c *contract) Shown(t *testing.T, _ context.Context, to bridge.Addr) []platformtest.Shown {
	var out []platformtest.Shown
	for _, e := range c.user(to).Shown(id.RoomID(to.Chat), c.b.id) {
		m := e.Content.AsMessage()
		out = append(out, platformtest.Shown{ID: bridge.MessageID(e.ID), Text: m.Body, Image: m.MsgType == event.MsgImage})
	}
	return out
}

// Gone has the person leave the DM, and waits until the bot's sync has seen it.
func (c *contract) Gone(t *testing.T, to bridge.Addr) {
	before := c.rec.Count()
	if _, err := c.user(to).Client.LeaveRoom(c.ctx, id.RoomID(to.Chat)); err != nil {
		t.Fatal(err)
	}
	for _, in := range c.rec.Wait(t, c.ctx, before+1)[before:] {
		if in.From == to && in.Text == "/leave" {
			return
		}
	}
	t.Fatalf("the bot never saw %s leave", to.User)
}

func (c *contract) RateLimit(t *testing.T, _ bridge.Addr) {
	c.proxy.LimitSends(1, 1500*time.Millisecond)
}

func (c *contract) Cannot() map[string]string {
	return map[string]string{"Rejected": "a homeserver stores any m.room.message, an empty body included"}
}

func TestPlatformContract(t *testing.T) {
	platformtest.Run(t, func(t *testing.T) platformtest.Harness {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t.Cleanup(cancel)
		proxy, err := matrixtest.NewFaultProxy(hs.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxy.Close) // after the bot stopped: cleanups run last first
		rec := &bridgetest.Inbox{}
		return &contract{ctx: ctx, b: startBotAt(t, ctx, proxy.URL, rec), rec: rec, proxy: proxy, users: map[bridge.Addr]*matrixtest.User{}}
	})
}
