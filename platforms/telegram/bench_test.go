package telegram_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// BenchmarkDelivery measures the whole delivery path (a member's message in through getUpdates, the
// core's per-recipient lanes and retries, the adapter's pacing, sendMessage to the fake) while the
// fake enforces its limits with 429s. It reports delivered messages per second and that rate as a
// share of the limit on sends that binds (the per-chat one with one recipient, the global one with
// eight): past 100% when the core combines a backlog into fewer sends (msgs/send).
// Every delivery must succeed: a loss fails the benchmark.
//
//	go test -tags goolm -run '^$' -bench Delivery -benchtime 400x ./platforms/telegram/
func BenchmarkDelivery(b *testing.B) {
	lim := telegramtest.Limits{Global: 200, GlobalBurst: 20, PerChat: 50, PerChatBurst: 10}
	for _, tc := range []struct {
		name       string
		recipients int
		limit      float64
	}{
		{"one-chat", 1, float64(lim.PerChat)},
		{"eight-chats", 8, float64(lim.Global)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			benchDelivery(b, lim, tc.recipients, tc.limit)
		})
	}
}

func benchDelivery(b *testing.B, lim telegramtest.Limits, recipients int, limit float64) {
	w := startWorld(b, lim, nil)
	sender := telegramtest.User{ID: 2000, FirstName: "Sender"}
	var others []telegramtest.User
	for i := range recipients {
		others = append(others, telegramtest.User{ID: int64(3000 + i), FirstName: "R" + strconv.Itoa(i)})
	}
	w.openRoom(b, sender, others...)
	// Let the join notices drain so only relays are measured.
	for _, u := range others {
		w.waitText(b, u, 0, "You joined the room")
	}
	for _, u := range others[:len(others)-1] {
		w.waitText(b, u, 0, strconv.Itoa(recipients+1)+" members")
	}
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var delivered, failed int
	w.b.ObserveDeliveries(func(ev bridge.DeliveryEvent) {
		if ev.Kind != bridge.KindRelay {
			return
		}
		mu.Lock()
		if ev.Err != nil {
			failed++
		} else {
			delivered++
		}
		cond.Broadcast()
		mu.Unlock()
	})
	waitFor := func(n int) {
		mu.Lock()
		for delivered+failed < n {
			cond.Wait()
		}
		mu.Unlock()
	}
	messages := (b.N + recipients - 1) / recipients
	total := messages * recipients
	// The core holds at most 64 unhandled messages per sender: keep the sender a window ahead of
	// the deliveries, as a fast typist would be, never past the core's queue.
	const window = 32
	limited := w.s.Stats().RateLimited
	b.ResetTimer()
	start := time.Now()
	for i := range messages {
		if i >= window {
			waitFor((i - window) * recipients)
		}
		w.say(sender, "m"+strconv.Itoa(i))
	}
	waitFor(total)
	elapsed := time.Since(start)
	b.StopTimer()
	if failed != 0 || delivered != total {
		b.Fatalf("%d of %d deliveries failed", failed, total)
	}
	sends := 0
	for _, u := range others {
		got := 0 // relayed messages: a combined send carries several, one a line
		for _, s := range w.s.Sent(u.ID) {
			got += strings.Count(s.Text, "\n") + 1
		}
		if got < messages {
			b.Fatalf("%s's chat holds %d messages, want at least %d", u.FirstName, got, messages)
		}
		sends += len(w.s.Sent(u.ID))
	}
	b.ReportMetric(float64(total)/float64(sends), "msgs/send")
	rate := float64(total) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(100*rate/limit, "%limit")
	b.ReportMetric(float64(w.s.Stats().RateLimited-limited), "429s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMediaUpload sends a 4 MiB document through the adapter to the fake Bot API (multipart
// upload, parsed by the fake): the adapter's upload throughput.
func BenchmarkMediaUpload(b *testing.B) {
	w := startWorld(b, unlimited(), nil)
	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	w.openRoom(b, alice)
	to := bridge.Addr{Platform: "telegram", User: "1001", Chat: "1001"}
	data := bytes.Repeat([]byte("kumo"), 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := w.a.SendMedia(context.Background(), to, bridge.Media{Kind: bridge.MediaFile, Name: "file.bin", Data: data},
			bridge.Message{Kind: bridge.KindRelay, From: "Proud Wolf"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMediaRelay moves a 4 MiB document from one Telegram member to another through the core:
// getFile and the download, the filter, the multipart upload, all against the fake.
func BenchmarkMediaRelay(b *testing.B) {
	w := startWorld(b, unlimited(), nil)
	alice := telegramtest.User{ID: 1001, FirstName: "Alice"}
	bob := telegramtest.User{ID: 1002, FirstName: "Bob"}
	w.openRoom(b, alice, bob)
	data := bytes.Repeat([]byte("kumo"), 1<<20)
	b.SetBytes(int64(len(data)))
	n := len(w.s.Sent(bob.ID))
	for b.Loop() {
		w.s.Inject(telegramtest.Incoming{From: alice, Media: "document", File: data, FileName: "f.bin"})
		n++
		if _, err := w.s.WaitSent(w.ctx, bob.ID, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.b.Stats().MediaPeak)/float64(len(data)), "peak-x-file")
}
