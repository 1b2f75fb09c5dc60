package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// Benchmarks run one scenario per iteration and report what it measured; run them with
// -benchtime 1x (see doc.go). Each figure comes from the fakes' own receipt times: when a message was
// injected at the fake, and when the fake received kumo's send.

// BenchmarkRelayUnderLoad: 200 rooms of 5 (30 with a Telegram member, 30 with a Discord member, the
// rest on the web chat), every member sending 3 messages within 10 s. It reports relay latency (a
// member's message injected -> each recipient's copy received by the fake), p50 and p99 per
// platform, and the deliveries per second each fake received as a share of its limit.
func BenchmarkRelayUnderLoad(b *testing.B) {
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		spec := loadSpec{rooms: 200, perRoom: 5, tg: 30, dc: 30, messages: 3,
			gap: 600 * time.Millisecond, window: 10 * time.Second, lifetime: 10 * time.Minute}
		r := startLoad(b, ctx, spec)
		r.open(b, ctx)
		r.send(b, ctx)
		r.waitDelivered(b, ctx)
		lat := map[string][]time.Duration{}
		var tgTimes, dcTimes, webTimes []time.Time
		for _, m := range r.all {
			var at []time.Time
			var texts []string
			switch p := m.p.(type) {
			case *tgPerson:
				for _, s := range r.tg.Sent(p.u.ID) {
					at, texts = append(at, s.At), append(texts, s.Text)
				}
				tgTimes = append(tgTimes, at...)
			case *dcPerson:
				texts = p.seen()
				for i := range texts {
					at = append(at, r.dcTimes.at(p.ch, i))
				}
				dcTimes = append(dcTimes, at...)
			case *webPerson:
				p.mu.Lock()
				at, texts = append(at, p.recv...), append(texts, p.got...)
				p.mu.Unlock()
				webTimes = append(webTimes, at...)
			}
			for i, msg := range texts {
				for _, s := range strings.Split(msg, "\n") { // a combined send: one relay a line
					g := relayRE.FindStringSubmatch(s)
					if g == nil || at[i].IsZero() {
						continue
					}
					room, _ := strconv.Atoi(g[3])
					idx, _ := strconv.Atoi(g[4])
					seq, _ := strconv.Atoi(g[5])
					lat[m.p.platform()] = append(lat[m.p.platform()], at[i].Sub(r.members[room][idx].sentAt[seq]))
				}
			}
		}
		for _, pl := range []string{"web", "telegram", "discord"} {
			b.ReportMetric(ms(percentile(lat[pl], 0.50)), pl+"_p50_ms")
			b.ReportMetric(ms(percentile(lat[pl], 0.99)), pl+"_p99_ms")
		}
		// Deliveries per second over the busiest 5 s, against each fake's limit.
		tgRate := busiest(tgTimes, 5*time.Second)
		dcRate := busiest(dcTimes, 5*time.Second)
		b.ReportMetric(tgRate, "telegram_msgs/s")
		b.ReportMetric(100*tgRate/float64(telegramtest.TelegramLimits().Global), "telegram_%_of_limit")
		b.ReportMetric(dcRate, "discord_msgs/s")
		b.ReportMetric(100*dcRate/50, "discord_%_of_limit")
		b.ReportMetric(busiest(webTimes, 5*time.Second), "web_msgs/s")
		b.Logf("429s: Telegram %d, Discord %d", r.tg.Stats().RateLimited, r.dc.RateLimited())
		r.closeClients()
		cancel()
	}
	b.ReportMetric(0, "ns/op")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// busiest is the highest number of events per second in any window of length w.
func busiest(times []time.Time, w time.Duration) float64 {
	s := append([]time.Time(nil), times...)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	best, j := 0, 0
	for i := range s {
		for s[i].Sub(s[j]) > w {
			j++
		}
		best = max(best, i-j+1)
	}
	return float64(best) / w.Seconds()
}

// BenchmarkPaymentToOpen: on regtest, from the payer's pay call to the "room is open" message the
// fake Telegram received, over 20 rooms.
func BenchmarkPaymentToOpen(b *testing.B) {
	lndMu.RLock()
	defer lndMu.RUnlock()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		tg := telegramtest.New(b)
		k := startKumo(b, setup{PriceSat: 1000, Lifetime: time.Hour, Telegram: tg, LND: true, LogLevel: "info"})
		readyFakes(b, ctx, k, tg, nil)
		var took []time.Duration
		for i := range 20 {
			buyer := newTG(tg, "Payer"+strconv.Itoa(i))
			buyer.send(b, ctx, "/newroom "+secret(fmt.Sprintf("bench-pay-%s-%d", randHex(4), i)))
			_, inv := waitSeen(b, ctx, buyer, 0, "an invoice", bolt11RE.MatchString)
			begin := time.Now()
			payment := netw.Pay(ctx, bolt11RE.FindString(inv))
			waitSeen(b, ctx, buyer, 0, "the room open", contains("room is open"))
			var opened time.Time
			for _, s := range tg.Sent(buyer.u.ID) {
				if strings.Contains(s.Text, "room is open") {
					opened = s.At
				}
			}
			took = append(took, opened.Sub(begin))
			if p, err := payment.Wait(ctx); err != nil || p.Status != lnrpc.Payment_SUCCEEDED {
				b.Fatalf("payment %d: %v %v", i, p, err)
			}
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		b.ReportMetric(ms(took[len(took)/2]), "median_ms")
		b.ReportMetric(ms(took[len(took)-1]), "max_ms")
		k.stop(time.Minute)
		cancel()
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMemory: kumo's live heap (the floor of go_memstats_heap_alloc_bytes over two GCs, from
// /metrics) with 500 web visitors connected, then with 500 rooms of their creator alone, then with
// 4 more members in each: per web connection, per room (with its creator) and per extra member.
func BenchmarkMemory(b *testing.B) {
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		const rooms = 500
		spec := loadSpec{rooms: rooms, perRoom: 5, lifetime: time.Hour}
		r := startLoad(b, ctx, spec)
		heap := func() float64 {
			m, _ := heapFloor(b, ctx, r.k)
			return m["go_memstats_heap_alloc_bytes"]
		}
		h0 := r.base["go_memstats_heap_alloc_bytes"]
		h1 := heap()
		for room := range rooms {
			r.members[room][0].p.send(b, ctx, "/newroom "+fmt.Sprintf("pw-%s-%d", r.tag, room))
		}
		r.k.waitMetric(b, ctx, "rooms open", func(m map[string]float64) bool { return m["kumo_rooms_open"] == rooms })
		h2 := heap()
		for room := range rooms {
			for _, m := range r.members[room][1:] {
				m.p.send(b, ctx, fmt.Sprintf("pw-%s-%d", r.tag, room))
			}
		}
		r.k.waitMetric(b, ctx, "members in", func(m map[string]float64) bool { return m["kumo_members"] == rooms*5 })
		h3 := heap()
		b.ReportMetric((h1-h0)/float64(rooms*5)/1024, "KiB/web_connection")
		b.ReportMetric((h2-h1)/rooms/1024, "KiB/room")
		b.ReportMetric((h3-h2)/float64(rooms*4)/1024, "KiB/member")
		r.closeClients()
		cancel()
	}
	b.ReportMetric(0, "ns/op")
}
