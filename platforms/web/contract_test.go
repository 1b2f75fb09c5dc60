package web

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/platformtest"
)

// contract runs the shared Platform contract against the web chat, each person a WebSocket client
// that keeps reading as a page does.
type contract struct {
	h     *harness
	mu    sync.Mutex
	pages map[bridge.Addr]*page
}

// page is what one client has been shown.
type page struct {
	c      *client
	mu     sync.Mutex
	events []event
}

func (c *contract) Platform() bridge.Platform { return c.h.p }

func (c *contract) User(t *testing.T) bridge.Addr {
	cl := c.h.dial(t, "", 0)
	to := cl.addr(c.h.rec)
	p := &page{c: cl}
	go func() { // reads until the connection closes, as the page does
		for {
			var ev event
			if err := cl.conn.ReadJSON(&ev); err != nil {
				return
			}
			p.mu.Lock()
			p.events = append(p.events, ev)
			p.mu.Unlock()
		}
	}()
	c.mu.Lock()
	c.pages[to] = p
	c.mu.Unlock()
	return to
}

func (c *contract) Shown(t *testing.T, _ context.Context, to bridge.Addr) []platformtest.Shown {
	c.mu.Lock()
	p := c.pages[to]
	c.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	deleted := map[string]bool{} // the page removes what a "delete" event names
	for _, ev := range p.events {
		if ev.Type == "delete" {
			for _, id := range ev.IDs {
				deleted[id] = true
			}
		}
	}
	var out []platformtest.Shown
	for _, ev := range p.events {
		if ev.Type != "msg" || deleted[strconv.FormatUint(ev.Seq, 10)] {
			continue
		}
		text := ev.Text
		if ev.From != "" {
			text = ev.From + ": " + text
		}
		if ev.Code != "" {
			text += "\n" + ev.Code
		}
		out = append(out, platformtest.Shown{ID: bridge.MessageID(strconv.FormatUint(ev.Seq, 10)), Text: text, Image: ev.Image != ""})
	}
	return out
}

// Gone closes the person's page; once the resume grace ends the bridge is told they left.
func (c *contract) Gone(t *testing.T, to bridge.Addr) {
	c.mu.Lock()
	p := c.pages[to]
	c.mu.Unlock()
	p.c.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if in := next(t, c.h.rec); in.Left && in.From == to {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the bridge was never told the closed page left")
		}
	}
}

func (c *contract) RateLimit(t *testing.T, _ bridge.Addr) {}

func (c *contract) Cannot() map[string]string {
	return map[string]string{
		"RateLimited": "the web chat answers a *RateLimitError only past 512 messages waiting for one page, which the socket's buffers absorb here",
		"Rejected":    "the web chat shows whatever the bridge sends (an empty message included); it refuses only addresses of other platforms",
	}
}

func TestPlatformContract(t *testing.T) {
	platformtest.Run(t, func(t *testing.T) platformtest.Harness {
		return &contract{h: start(t, Config{}, WithResumeGrace(50*time.Millisecond)), pages: map[bridge.Addr]*page{}}
	})
}
