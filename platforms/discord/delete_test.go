package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// send is SendText retried after rate limits, to fill a DM under tight limits.
func send(t *testing.T, ctx context.Context, a *Adapter, to bridge.Addr, text string) bridge.MessageID {
	t.Helper()
	for {
		id, err := a.SendText(ctx, to, bridge.Message{Kind: bridge.KindReply, Text: text})
		var rl *bridge.RateLimitError
		if errors.As(err, &rl) {
			time.Sleep(rl.RetryAfter)
			continue
		}
		if err != nil || id == "" {
			t.Fatalf("SendText = %q, %v", id, err)
		}
		return id
	}
}

// TestWipeDM is what the bridge does with a Discord DM when a room ends: it keeps the ids of what
// the bot showed and, since DeletesTheirs is false, none of the person's own; deleting them empties
// the DM of the bot's messages and leaves the person's, without a single invalid request.
func TestWipeDM(t *testing.T) {
	tests := []struct {
		name string
		opts discordtest.Options
		aopt []Option
		// storm, when set, becomes the fake's global limit as the wipe starts: lower than the adapter
		// paces for, so 429s must come.
		storm discordtest.Window
	}{
		// Discord's delete bucket (5 per second); creation's faster than Discord's, to fill the DM quickly.
		{name: "Discord's limits", opts: discordtest.Options{RouteLimit: discordtest.Window{N: 50, Per: time.Second}}},
		{name: "429 storm", opts: discordtest.Options{
			DeleteLimit: discordtest.Window{N: 10, Per: 50 * time.Millisecond},
			RouteLimit:  discordtest.Window{N: 100, Per: 50 * time.Millisecond},
		}, aopt: []Option{WithPacing(rate.Inf, 1)}, storm: discordtest.Window{N: 2, Per: 50 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
			defer cancel()
			e := newEnv(t, tc.opts, tc.aopt...)
			in := &bridgetest.Inbox{}
			e.run(t, in)
			alice := e.fake.AddUser("alice")
			dm := e.fake.DMChannel(alice.ID)
			to := bridge.Addr{Platform: "discord", User: alice.ID, Chat: dm}

			var kept []bridge.MessageID // what the bridge's room remembers for alice
			var theirs []string
			const n = 20
			for i := range n {
				theirs = append(theirs, e.fake.SendDM(alice.ID, fmt.Sprintf("alice %d", i)))
				kept = append(kept, send(t, ctx, e.a, to, fmt.Sprintf("bot %d", i)))
			}
			eventually(t, "alice's messages to arrive", func() bool { return len(in.All()) == n })
			for i, got := range in.All() {
				if got.ID != bridge.MessageID(theirs[i]) {
					t.Fatalf("inbound %d has id %q, want %q", i, got.ID, theirs[i])
				}
				if e.a.DeletesTheirs(ctx, got.From) {
					kept = append(kept, got.ID)
				}
			}
			invalidBefore, limitedBefore := e.fake.InvalidRequests(), e.a.RateLimited()
			if tc.storm.N > 0 {
				e.fake.SetGlobalLimit(tc.storm)
			}

			honoured, err := bridgetest.DeleteAll(ctx, e.a, to, kept)
			if err != nil {
				t.Fatal(err)
			}
			var shown []string
			for _, m := range e.fake.Shown(dm) {
				shown = append(shown, m.ID)
			}
			if !slices.Equal(shown, theirs) {
				t.Errorf("the DM still shows %d messages, want alice's %d and nothing of the bot's", len(shown), len(theirs))
			}
			for _, id := range theirs {
				if n := e.fake.DeleteAttempts(id); n != 0 {
					t.Errorf("%d delete attempts on alice's message %s", n, id)
				}
			}
			// A retried batch is harmless: what is gone counts as deleted.
			if _, err := bridgetest.DeleteAll(ctx, e.a, to, kept[:1]); err != nil {
				t.Errorf("deleting an already deleted message: %v", err)
			}
			invalid, limited := e.fake.InvalidRequests()-invalidBefore, e.a.RateLimited()-limitedBefore
			if tc.storm.N > 0 {
				if honoured == 0 || limited == 0 {
					t.Errorf("no 429 during the wipe (honoured %d, adapter saw %d): the storm did not happen", honoured, limited)
				}
				t.Logf("%d deletions through %d 429s", len(kept), honoured)
			} else if invalid != 0 || limited != 0 {
				t.Errorf("the wipe under Discord's limits made %d invalid requests (%d rate limits): pacing should avoid all", invalid, limited)
			}
		})
	}
}

// TestDeleteErrors: what each of Discord's answers to a DELETE means to the bridge.
func TestDeleteErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	e := newEnv(t, discordtest.Options{})
	alice := e.fake.AddUser("alice")
	dm := e.fake.DMChannel(alice.ID)
	to := bridge.Addr{Platform: "discord", User: alice.ID, Chat: dm}
	hers := bridge.MessageID(e.fake.SendDM(alice.ID, "mine"))
	bots := e.fake.SeedBotMessages(dm, 1)
	tests := []struct {
		name string
		to   bridge.Addr
		ids  []bridge.MessageID
		want error // nil: deleted
	}{
		{"the bot's own", to, []bridge.MessageID{bridge.MessageID(bots[0])}, nil},
		{"never existed", to, []bridge.MessageID{"1"}, nil},
		{"the DM opened from the user id", bridge.Addr{Platform: "discord", User: alice.ID}, []bridge.MessageID{bridge.MessageID(bots[0])}, nil},
		{"the person's own (50003)", to, []bridge.MessageID{hers}, bridge.ErrRejected},
		{"unknown channel", bridge.Addr{Platform: "discord", User: alice.ID, Chat: "404"}, []bridge.MessageID{"1"}, bridge.ErrRecipientGone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.a.DeleteMessages(ctx, tc.to, tc.ids)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("DeleteMessages = %v, want %v", err, tc.want)
			}
		})
	}
	if e.a.DeleteBatch() != 1 || e.a.DeletesTheirs(ctx, to) {
		t.Errorf("DeleteBatch %d, DeletesTheirs %v: want 1, false", e.a.DeleteBatch(), e.a.DeletesTheirs(ctx, to))
	}
	if got := e.fake.Shown(dm); len(got) != 1 || got[0].ID != string(hers) {
		t.Errorf("the DM shows %+v, want alice's message only", got)
	}
}

// BenchmarkWipe1000 deletes 1,000 of the bot's messages from one DM and reports the rate achieved as a
// share of the channel's delete bucket (the bottleneck: a DM takes one DELETE per message), and the
// 429s met (each an invalid request at Discord). "discord" is the observed bucket, 5 per second (one
// run takes over 200 s); "scaled" is that bucket 20 times faster, with the adapter's global pacing
// (40/s) lifted to match.
func BenchmarkWipe1000(b *testing.B) {
	for _, bc := range []struct {
		name   string
		bucket discordtest.Window
		pace   rate.Limit
	}{
		{"discord", discordtest.Window{N: 5, Per: time.Second}, 40},
		{"scaled", discordtest.Window{N: 5, Per: 50 * time.Millisecond}, 200},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fake := discordtest.New(discordtest.Options{DeleteLimit: bc.bucket, GlobalLimit: discordtest.Window{N: 1000, Per: time.Second}})
			defer fake.Close()
			a, err := New(Config{Token: fake.Token(), APIURL: fake.URL}, slogDiscard(), WithPacing(bc.pace, 10))
			if err != nil {
				b.Fatal(err)
			}
			alice := fake.AddUser("alice")
			dm := fake.DMChannel(alice.ID)
			to := bridge.Addr{Platform: "discord", User: alice.ID, Chat: dm}
			ctx := context.Background()
			const n = 1000
			var elapsed time.Duration
			limited := 0
			for b.Loop() {
				b.StopTimer()
				var ids []bridge.MessageID
				for _, id := range fake.SeedBotMessages(dm, n) {
					ids = append(ids, bridge.MessageID(id))
				}
				b.StartTimer()
				start := time.Now()
				l, err := bridgetest.DeleteAll(ctx, a, to, ids)
				if err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				limited += l
				if left := len(fake.Shown(dm)); left != 0 {
					b.Fatalf("%d messages left", left)
				}
			}
			perSec := float64(b.N*n) / elapsed.Seconds()
			b.ReportMetric(perSec, "deletes/s")
			b.ReportMetric(perSec/(float64(bc.bucket.N)/bc.bucket.Per.Seconds()), "share-of-bucket")
			b.ReportMetric(float64(limited)/float64(b.N), "429s/op")
		})
	}
}

func TestPadResetAfter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0.049", "0.054"}, {"1.000", "1.005"}, {"", ""}, {"soon", "soon"},
	} {
		h := http.Header{}
		if tc.in != "" {
			h.Set("X-RateLimit-Reset-After", tc.in)
		}
		padResetAfter(h)
		if got := h.Get("X-RateLimit-Reset-After"); got != tc.want {
			t.Errorf("Reset-After %q padded to %q, want %q", tc.in, got, tc.want)
		}
	}
}
