// Package platformtest is the contract of bridge.Platform written down once, as a test every adapter
// runs against its fake or a real server (the tailscale ipn/store/storetest pattern): text, the pieces
// of a split text, images, the message ids sends return, and what each kind of failure comes back as.
// Each optional ability an adapter claims (bridge.Deleter...) is tested too.
package platformtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
)

// Harness is one running adapter and the people it can reach, on a fake or a real server.
type Harness interface {
	// Platform is the adapter under test, running and connected.
	Platform() bridge.Platform
	// User is a new person who has opened a DM with the bot; the address is what the adapter's
	// Inbound would carry.
	User(t *testing.T) bridge.Addr
	// Shown is what the person's chat shows now, the bot's messages in order: deleted ones are gone.
	Shown(t *testing.T, ctx context.Context, to bridge.Addr) []Shown
	// Gone makes the person unreachable the platform's way (blocked the bot, closed their DMs).
	Gone(t *testing.T, to bridge.Addr)
	// RateLimit makes the platform answer the next send to the person with its "too many requests".
	RateLimit(t *testing.T, to bridge.Addr)
}

// Cannot is what a harness implements when its platform has no way to produce some case: the
// case's name (as in Run) and why. Those cases are skipped with the reason.
type Cannot interface {
	Cannot() map[string]string
}

// Shown is one message as the person sees it.
type Shown struct {
	ID    bridge.MessageID
	Text  string // the text or caption as displayed
	Image bool
}

// Run runs the contract; newHarness makes a fresh harness for each case.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	cases := []struct {
		name string
		f    func(t *testing.T, h Harness)
	}{
		{"Text", testText},
		{"SplitPieces", testSplit},
		{"Image", testImage},
		{"RateLimited", testRateLimited},
		{"RecipientGone", testGone},
		{"Rejected", testRejected},
		{"Deleter", testDeleter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if n, ok := h.(Cannot); ok {
				if why, ok := n.Cannot()[c.name]; ok {
					t.Skipf("%s cannot: %s", h.Platform().Name(), why)
				}
			}
			c.f(t, h)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// waitShown waits until the chat shows n messages and returns them.
func waitShown(t *testing.T, ctx context.Context, h Harness, to bridge.Addr, n int) []Shown {
	t.Helper()
	for {
		got := h.Shown(t, ctx, to)
		if len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the chat shows %d messages, want %d: %+v", len(got), n, got)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func distinct(t *testing.T, ids []bridge.MessageID) {
	t.Helper()
	seen := map[bridge.MessageID]bool{}
	for _, id := range ids {
		if id == "" {
			t.Errorf("a send returned an empty message id (ids %q)", ids)
		}
		if seen[id] {
			t.Errorf("message id %q returned twice (ids %q)", id, ids)
		}
		seen[id] = true
	}
}

// Texts the tests send: words that no platform escapes or formats.
func words(n int, tag string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s%d ", tag, i)
	}
	return strings.TrimSpace(b.String())
}

func testText(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	p, to := h.Platform(), h.User(t)
	var ids []bridge.MessageID
	for i, m := range []bridge.Message{
		{Kind: bridge.KindRelay, From: "Quiet Otter", Text: "hello there"},
		{Kind: bridge.KindReply, Text: "a reply"},
		{Kind: bridge.KindNotice, Text: "a notice"},
		{Kind: bridge.KindReply, Text: "the password is", Code: "correct horse battery"},
	} {
		id, err := p.SendText(ctx, to, m)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	distinct(t, ids)
	shown := waitShown(t, ctx, h, to, 4)
	for i, want := range []string{"Quiet Otter", "hello there", "a reply", "a notice", "correct horse battery"} {
		j := min(max(i-1, 0), 3)
		if !strings.Contains(shown[j].Text, want) {
			t.Errorf("message %d shows %q, want it to contain %q", j, shown[j].Text, want)
		}
	}
	for i, s := range shown[:4] {
		if s.ID != ids[i] {
			t.Errorf("message %d has id %q, the send returned %q", i, s.ID, ids[i])
		}
	}
}

// A text longer than Limits is split by the bridge; every piece fits and arrives, in order.
func testSplit(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	p, to := h.Platform(), h.User(t)
	lim := p.Limits()
	if lim.MaxText <= 0 {
		t.Skip("no text limit")
	}
	m := bridge.Message{Kind: bridge.KindRelay, From: "Quiet Otter"}
	m.Text = words(lim.MaxText/4+10, "w") // about 1.3 times the limit
	budget := lim.MaxText - lim.Overhead - lim.Len(m.From+": ")
	pieces := bridge.Split(m.Text, budget, lim.Len)
	if len(pieces) < 2 {
		t.Fatalf("the text was not split: %d pieces", len(pieces))
	}
	var ids []bridge.MessageID
	for i, piece := range pieces {
		pm := m
		pm.Text, pm.Part, pm.Parts = piece, i+1, len(pieces)
		id, err := p.SendText(ctx, to, pm)
		if err != nil {
			t.Fatalf("piece %d of %d: %v", i+1, len(pieces), err)
		}
		ids = append(ids, id)
	}
	distinct(t, ids)
	shown := waitShown(t, ctx, h, to, len(pieces))
	for i, piece := range pieces {
		first, last := strings.Fields(piece)[0], strings.Fields(piece)[len(strings.Fields(piece))-1]
		if !strings.Contains(shown[i].Text, first) || !strings.Contains(shown[i].Text, last) {
			t.Errorf("piece %d shows %.60q..., want %q to %q", i+1, shown[i].Text, first, last)
		}
	}
}

func testImage(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	p, to := h.Platform(), h.User(t)
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for x := range 64 {
		img.Set(x, x, color.Black)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	ids, err := p.SendImage(ctx, to, bridge.Image{Name: "invoice.png", PNG: b.Bytes()}, bridge.Message{Kind: bridge.KindReply, Text: "pay this"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		t.Fatal("SendImage returned no ids")
	}
	distinct(t, ids)
	shown := waitShown(t, ctx, h, to, len(ids))
	var image, caption bool
	for _, s := range shown {
		image = image || s.Image
		caption = caption || strings.Contains(s.Text, "pay this")
	}
	if !image || !caption {
		t.Errorf("the chat shows %+v, want the image and its caption", shown)
	}
}

func testRateLimited(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	p, to := h.Platform(), h.User(t)
	h.RateLimit(t, to)
	_, err := p.SendText(ctx, to, bridge.Message{Kind: bridge.KindReply, Text: "too soon"})
	var rl *bridge.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("a rate-limited send returned %v, want a *bridge.RateLimitError with the wait", err)
	}
	if errors.Is(err, bridge.ErrRejected) || errors.Is(err, bridge.ErrRecipientGone) {
		t.Fatalf("a rate limit came back as final: %v", err)
	}
}

func testGone(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	p, to := h.Platform(), h.User(t)
	if _, err := p.SendText(ctx, to, bridge.Message{Kind: bridge.KindReply, Text: "still here"}); err != nil {
		t.Fatal(err)
	}
	h.Gone(t, to)
	_, err := p.SendText(ctx, to, bridge.Message{Kind: bridge.KindReply, Text: "gone?"})
	if !errors.Is(err, bridge.ErrRecipientGone) {
		t.Fatalf("a send to someone gone returned %v, want bridge.ErrRecipientGone", err)
	}
}

// A message the platform refuses for good (an empty one: no platform shows it) is ErrRejected, so
// the bridge does not retry it.
func testRejected(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	p, to := h.Platform(), h.User(t)
	_, err := p.SendText(ctx, to, bridge.Message{Kind: bridge.KindReply})
	if !errors.Is(err, bridge.ErrRejected) {
		t.Fatalf("an empty message returned %v, want bridge.ErrRejected", err)
	}
}

// An adapter that claims bridge.Deleter deletes what it sent: the chat no longer shows it, the rest
// stays, and deleting again is harmless.
func testDeleter(t *testing.T, h Harness) {
	p := h.Platform()
	d, ok := p.(bridge.Deleter)
	if !ok {
		t.Skipf("%s does not implement bridge.Deleter", p.Name())
	}
	ctx := ctxFor(t)
	to := h.User(t)
	var ids []bridge.MessageID
	for i := range 3 {
		id, err := p.SendText(ctx, to, bridge.Message{Kind: bridge.KindReply, Text: fmt.Sprintf("message %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	waitShown(t, ctx, h, to, 3)
	if d.DeleteBatch() < 1 {
		t.Fatalf("DeleteBatch is %d", d.DeleteBatch())
	}
	for range 2 { // the second time the messages are gone already
		for start := 0; start < 2; start += d.DeleteBatch() {
			if err := d.DeleteMessages(ctx, to, ids[start:min(start+d.DeleteBatch(), 2)]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A homeserver's clients learn of a deletion through their sync: wait for it.
	for shown := h.Shown(t, ctx, to); len(shown) != 1 || shown[0].ID != ids[2]; shown = h.Shown(t, ctx, to) {
		select {
		case <-ctx.Done():
			t.Fatalf("after deleting two of three the chat shows %+v, want only %q", shown, ids[2])
		case <-time.After(10 * time.Millisecond):
		}
	}
}
