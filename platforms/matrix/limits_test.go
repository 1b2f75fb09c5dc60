package matrix

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
)

// dmBehindProxy runs a bot that reaches the homeserver through a fault proxy, and an encrypted DM
// of alice's with it.
func dmBehindProxy(t *testing.T, ctx context.Context) (*matrixtest.FaultProxy, *bot, *matrixtest.User, id.RoomID, bridge.Addr) {
	t.Helper()
	proxy, err := matrixtest.NewFaultProxy(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the bot's cleanup, so it runs after the bot stopped its long-poll through it.
	t.Cleanup(proxy.Close)
	_, b, alice, room, me := aliceDMAt(t, ctx, proxy.URL, true)
	return proxy, b, alice, room, me
}

// TestRateLimited: a send answered with M_LIMIT_EXCEEDED comes back to the bridge as a
// *bridge.RateLimitError carrying retry_after_ms, after exactly one request (mautrix does not retry
// behind the bridge's back), and the same message sent again then arrives once.
func TestRateLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	proxy, b, alice, room, to := dmBehindProxy(t, ctx)
	m := bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "first"}

	proxy.LimitSends(1, 1500*time.Millisecond)
	before, _ := proxy.Sends()
	_, err := b.a.SendText(ctx, to, m)
	var rl *bridge.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 1500*time.Millisecond {
		t.Fatalf("SendText under M_LIMIT_EXCEEDED = %v, want *bridge.RateLimitError{RetryAfter: 1.5s}", err)
	}
	if after, limited := proxy.Sends(); after-before != 1 || limited != 1 {
		t.Fatalf("%d send requests (%d limited) for one SendText, want exactly 1", after-before, limited)
	}
	if _, err := b.a.SendText(ctx, to, m); err != nil {
		t.Fatal(err)
	}
	if _, err := b.a.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "second"}); err != nil {
		t.Fatal(err)
	}
	message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return c.Body == "Blue Fox: second" })
	var bodies []string
	for _, e := range alice.Messages(room, b.id) {
		bodies = append(bodies, e.Content.AsMessage().Body)
	}
	if strings.Join(bodies, "|") != "Blue Fox: first|Blue Fox: second" {
		t.Errorf("alice received %q, want first then second, once each", bodies)
	}
}

// TestLimits: the longest text Limits allows, made of the characters that cost the most once
// escaped (JSON, HTML, encryption), is accepted by the homeserver and arrives whole, in encrypted
// and plain rooms; so the bridge's splitting by Limits never produces an event the server refuses.
func TestLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b := startBot(t, ctx, &bridgetest.Inbox{})
	lim := b.a.Limits()
	alice := login(t, ctx, "alice")
	rooms := map[bool]string{}
	for _, enc := range []bool{true, false} {
		rooms[enc] = openDM(t, ctx, alice, b, enc).String()
	}
	for _, tc := range []struct{ name, unit string }{
		{"newlines", "\n"}, {"ampersands", "&"}, {"angles", "<"}, {"quotes", `"`},
		{"emoji", "🦊"}, {"cjk", "雲"}, {"control", "\x01"}, {"ascii", "a"},
	} {
		for _, enc := range []bool{true, false} {
			from := "Blue Fox"
			budget := lim.MaxText - lim.Overhead - lim.Len(from+": ")
			text := strings.Repeat(tc.unit, budget/lim.Len(tc.unit))
			to := bridge.Addr{Platform: Name, User: alice.ID.String(), Chat: rooms[enc]}
			if _, err := b.a.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, From: from, Text: text}); err != nil {
				t.Errorf("%s (encrypted=%v, %d runes): %v", tc.name, enc, len([]rune(text)), err)
				continue
			}
			// Newlines are quoted line by line in the plain body; every other unit follows ": ".
			want := from + ": " + text
			if tc.unit == "\n" {
				want = from + ":\n> " + strings.ReplaceAll(text, "\n", "\n> ")
			}
			got := message(t, ctx, alice, id.RoomID(rooms[enc]), b.id, func(c *event.MessageEventContent) bool {
				return strings.HasPrefix(c.Body, want[:len(from)+4])
			})
			if got.Body != want {
				t.Errorf("%s (encrypted=%v): body of %d bytes arrived, want %d", tc.name, enc, len(got.Body), len(want))
			}
		}
	}
	// Twice the cap is refused by the server (M_TOO_LARGE): the limit guards a real boundary.
	text := strings.Repeat("\n", 2*lim.MaxText/lim.Len("\n"))
	_, err := b.a.SendText(ctx, bridge.Addr{Platform: Name, User: alice.ID.String(), Chat: rooms[true]},
		bridge.Message{Kind: bridge.KindRelay, From: "x", Text: text})
	if !errors.Is(err, bridge.ErrRejected) {
		t.Errorf("a text twice the limit: %v, want ErrRejected (M_TOO_LARGE)", err)
	}
}
