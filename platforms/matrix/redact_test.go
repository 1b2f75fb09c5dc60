package matrix

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// waitPowerLevels waits until the bot's own sync has brought a power-level change of room after which
// DeletesTheirs answers want.
func waitPowerLevels(t *testing.T, ctx context.Context, b *bot, room id.RoomID, to bridge.Addr, want bool) {
	t.Helper()
	for {
		select {
		case r := <-b.levels:
			if r == room && b.a.DeletesTheirs(ctx, to) == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the bot's sync never brought power levels with DeletesTheirs = %v", want)
		}
	}
}

func eventIDs(ids []bridge.MessageID) []id.EventID {
	out := make([]id.EventID, len(ids))
	for i, m := range ids {
		out[i] = id.EventID(m)
	}
	return out
}

// TestRedactDM is what the bridge does with a Matrix DM when a room ends, in an encrypted DM: the
// bot's events are redacted, and the member's too where the room's power levels let the bot, which
// DeletesTheirs reads from the room (and re-reads when they change). The member's own client sees
// the redactions arrive and the events' content gone on the homeserver.
func TestRedactDM(t *testing.T) {
	for _, tc := range []struct {
		name   string
		preset string
		theirs bool // the bot may redact the member's events in such a DM
	}{
		{"Element's DM (trusted_private_chat): the invited bot has the creator's level", "trusted_private_chat", true},
		{"private_chat: the invited bot is at level 0", "private_chat", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			rec := &bridgetest.Inbox{}
			b := startBot(t, ctx, rec)
			alice := login(t, ctx, "alice")
			room := openDMPreset(t, ctx, alice, b, true, tc.preset)
			to := bridge.Addr{Platform: Name, User: alice.ID.String(), Chat: room.String()}
			if got := b.a.DeletesTheirs(ctx, to); got != tc.theirs {
				t.Fatalf("DeletesTheirs = %v, want %v", got, tc.theirs)
			}

			var kept, hers []bridge.MessageID // kept: what the bridge's room remembers for alice
			for i := range 3 {
				eid, err := alice.Send(ctx, room, fmt.Sprintf("alice %d", i))
				if err != nil {
					t.Fatal(err)
				}
				if in := rec.Wait(t, ctx, i+1)[i]; in.ID != bridge.MessageID(eid) || in.Text != fmt.Sprintf("alice %d", i) {
					t.Fatalf("inbound %+v, want alice's message %s", in, eid)
				}
				hers = append(hers, bridge.MessageID(eid))
				if b.a.DeletesTheirs(ctx, to) {
					kept = append(kept, bridge.MessageID(eid))
				}
				mine, err := b.a.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: fmt.Sprintf("fox %d", i)})
				if err != nil {
					t.Fatal(err)
				}
				kept = append(kept, mine)
			}
			message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return c.Body == "Blue Fox: fox 2" })

			if _, err := bridgetest.DeleteAll(ctx, b.a, to, kept); err != nil {
				t.Fatal(err)
			}
			if err := alice.WaitRedacted(ctx, room, eventIDs(kept)); err != nil {
				t.Fatal(err)
			}
			// A retried batch is harmless: the same transaction, or an event already redacted.
			if _, err := bridgetest.DeleteAll(ctx, b.a, to, kept[:1]); err != nil {
				t.Errorf("redacting again: %v", err)
			}
			if tc.theirs {
				return
			}

			// Without the power, alice's messages stay, and trying is refused for good.
			if evt, err := alice.Client.GetEvent(ctx, room, id.EventID(hers[0])); err != nil || evt.Unsigned.RedactedBecause != nil {
				t.Errorf("alice's message without the bot's power: %v, redacted %v", err, evt != nil && evt.Unsigned.RedactedBecause != nil)
			}
			if err := b.a.DeleteMessages(ctx, to, hers[:1]); !errors.Is(err, bridge.ErrRejected) {
				t.Errorf("redacting alice's message without the power: %v, want ErrRejected", err)
			}
			// alice raises the bot to the redact level: the bot's sync brings the new power levels.
			pl := &event.PowerLevelsEventContent{}
			if err := alice.Client.StateEvent(ctx, room, event.StatePowerLevels, "", pl); err != nil {
				t.Fatal(err)
			}
			pl.SetUserLevel(b.id, pl.Redact())
			if _, err := alice.Client.SendStateEvent(ctx, room, event.StatePowerLevels, "", pl); err != nil {
				t.Fatal(err)
			}
			waitPowerLevels(t, ctx, b, room, to, true)
			if _, err := bridgetest.DeleteAll(ctx, b.a, to, hers); err != nil {
				t.Fatal(err)
			}
			if err := alice.WaitRedacted(ctx, room, eventIDs(hers)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRedactRateLimited: a redaction answered with M_LIMIT_EXCEEDED comes back as a
// *bridge.RateLimitError carrying retry_after_ms after one request, and redacting again after the
// wait loses nothing.
func TestRedactRateLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	proxy, b, alice, room, to := dmBehindProxy(t, ctx)
	var kept []bridge.MessageID
	for i := range 4 {
		mid, err := b.a.SendText(ctx, to, bridge.Message{Kind: bridge.KindNotice, Text: fmt.Sprintf("notice %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, mid)
	}

	proxy.LimitRedactions(3, 200*time.Millisecond)
	err := b.a.DeleteMessages(ctx, to, kept[:1])
	var rl *bridge.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 200*time.Millisecond {
		t.Fatalf("DeleteMessages under M_LIMIT_EXCEEDED = %v, want *bridge.RateLimitError{RetryAfter: 200ms}", err)
	}
	if total, limited := proxy.Redactions(); total != 1 || limited != 1 {
		t.Fatalf("%d redaction requests (%d limited) for one id, want exactly 1", total, limited)
	}
	honoured, err := bridgetest.DeleteAll(ctx, b.a, to, kept)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.WaitRedacted(ctx, room, eventIDs(kept)); err != nil {
		t.Fatal(err)
	}
	if total, limited := proxy.Redactions(); honoured != 2 || limited != 3 || total != len(kept)+limited {
		t.Errorf("%d redaction requests, %d limited, %d waits honoured: want %d, 3, 2", total, limited, honoured, len(kept)+3)
	}
}

// BenchmarkRedact measures redactions per second of the bot's own events in an encrypted DM on
// Dendrite, with the adapter's pacing lifted (the default paces all events at 5/s with a burst of
// 10; Synapse's default rc_message is 0.2/s, burst 10): what the homeserver itself sustains.
func BenchmarkRedact(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bt := startBot(b, ctx, &bridgetest.Inbox{}, WithRate(rate.Inf, 1))
	alice := login(b, ctx, "alice")
	room := openDM(b, ctx, alice, bt, true)
	to := bridge.Addr{Platform: Name, User: alice.ID.String(), Chat: room.String()}
	const n = 100
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		var ids []bridge.MessageID
		for i := range n {
			mid, err := bt.a.SendText(ctx, to, bridge.Message{Kind: bridge.KindNotice, Text: fmt.Sprintf("notice %d", i)})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, mid)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := bridgetest.DeleteAll(ctx, bt.a, to, ids); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "redactions/s")
}
