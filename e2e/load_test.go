package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// loadSpec shapes a load run: rooms of perRoom members, each member sending messages texts, spread
// over window.
type loadSpec struct {
	rooms, perRoom int
	// tg, dc and mx rooms get one Telegram, Discord or Matrix member each (rooms [0,tg) a Telegram
	// member, [tg,tg+dc) a Discord one, [0,mx) also a Matrix one); every other member is on the web
	// chat. The messengers' bot limits (Telegram 30 messages/s, Discord 50 requests/s and 5 per DM
	// per 5 s, a homeserver's few per second) bound how many of them one kumo can serve at once,
	// so the mass is on the web chat, which has no such limit.
	tg, dc, mx int
	// every, when set, overrides them: member idx of every room is on every[idx] ("telegram",
	// "discord", "matrix" or "web"): a lively room whose members all sit behind a messenger's limits.
	every    []string
	messages int
	gap      time.Duration // between one member's messages (under kumo's flood limit of 2/s)
	window   time.Duration // every member's messages fall in this window
	lifetime time.Duration
}

type loadMember struct {
	p         person
	room, idx int
	nick      string
	sentAt    []time.Time // when each of its messages was injected
}

// loadRun is a running load: kumo, the fakes and every member.
type loadRun struct {
	spec    loadSpec
	k       *kumo
	tg      *telegramtest.Server
	dc      *discordtest.Server
	tag     string // in every text and password of the run: one secret that covers them all
	members [][]*loadMember
	all     []*loadMember
	base    map[string]float64 // kumo's metrics before any room
	baseMax float64            // highest heap seen while sampling the baseline
	dcTimes *arrivals          // when the fake Discord received each message, per channel
}

// startLoad starts kumo with free rooms, the fakes at their real limits, and every member (web
// clients connected, Matrix users in their DMs), and samples kumo's baseline.
func startLoad(t testing.TB, ctx context.Context, spec loadSpec) *loadRun {
	t.Helper()
	r := &loadRun{spec: spec, tag: "LD" + randHex(6)}
	secret(r.tag)
	r.tg = telegramtest.New(t, telegramtest.WithLimits(telegramtest.TelegramLimits()))
	r.dc = discordtest.New(discordtest.Options{}) // Discord's own limits
	t.Cleanup(r.dc.Close)
	r.k = startKumo(t, setup{PriceSat: 0, Lifetime: spec.lifetime, Telegram: r.tg, Discord: r.dc,
		Matrix: spec.mx > 0, Web: true, LogLevel: "info"})
	readyFakes(t, ctx, r.k, r.tg, r.dc)
	r.dcTimes = watchDiscord(ctx, r.dc)

	// The baseline: kumo connected everywhere, no room, sampled until two GCs have passed.
	began := time.Now()
	r.base, r.baseMax = heapFloor(t, ctx, r.k)
	t.Logf("baseline sampled in %.1fs", time.Since(began).Seconds())
	began = time.Now()
	defer func() { t.Logf("members connected in %.1fs", time.Since(began).Seconds()) }()

	r.members = make([][]*loadMember, spec.rooms)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for room := range spec.rooms {
		r.members[room] = make([]*loadMember, spec.perRoom)
		for idx := range spec.perRoom {
			m := &loadMember{room: room, idx: idx}
			r.members[room][idx] = m
			r.all = append(r.all, m)
			on := ""
			if idx < len(spec.every) {
				on = spec.every[idx]
			}
			switch {
			case on == "telegram" || on == "" && idx == 1 && room < spec.tg:
				m.p = newTG(r.tg, "Tg"+strconv.Itoa(room)+"x"+strconv.Itoa(idx))
			case on == "discord" || on == "" && idx == 1 && room < spec.tg+spec.dc:
				p := newDC(r.dc, "dc"+strconv.Itoa(room)+"x"+strconv.Itoa(idx))
				r.dcTimes.track(p.ch)
				m.p = p
			case on == "matrix" || on == "" && idx == 2 && room < spec.mx:
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := newMX(t, ctx, r.k, "load")
					mu.Lock()
					m.p = p
					mu.Unlock()
				}()
			default:
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					p := newWeb(t, ctx, r.k)
					mu.Lock()
					m.p = p
					mu.Unlock()
				}()
			}
		}
	}
	wg.Wait()
	return r
}

// open has every creator open a free room with the run's password for it, then every other member
// join by sending that password, and waits until kumo counts them all and each knows their nick.
func (r *loadRun) open(t testing.TB, ctx context.Context) {
	t.Helper()
	pw := func(room int) string { return fmt.Sprintf("pw-%s-%d", r.tag, room) }
	for room := range r.spec.rooms {
		r.members[room][0].p.send(t, ctx, "/newroom "+pw(room))
	}
	r.k.waitMetric(t, ctx, "every room open", func(m map[string]float64) bool { return m["kumo_rooms_open"] == float64(r.spec.rooms) })
	for room := range r.spec.rooms {
		for _, m := range r.members[room][1:] {
			m.p.send(t, ctx, pw(room))
		}
	}
	total := float64(r.spec.rooms * r.spec.perRoom)
	r.k.waitMetric(t, ctx, "every member in", func(m map[string]float64) bool { return m["kumo_members"] == total })
	// Each member's pseudonym, from what kumo told them.
	for {
		missing := 0
		for _, m := range r.all {
			if m.nick != "" {
				continue
			}
			for _, s := range m.p.seen() {
				if i := strings.Index(s, "You joined the room as "); i >= 0 {
					m.nick = nickAfter(t, s, "You joined the room as ")
				} else if strings.Contains(s, "room is open") {
					m.nick = nickAfter(t, s, "You are ")
				}
			}
			if m.nick == "" {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d members were never told their pseudonym", missing)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r *loadRun) text(m *loadMember, seq int) string {
	return fmt.Sprintf("%s %d.%d.%d 🚀 <b>x</b>", r.tag, m.room, m.idx, seq)
}

// send has every member send its messages, each member starting at a random point of the window
// and pacing itself under kumo's flood limit. It returns when all are sent.
func (r *loadRun) send(t testing.TB, ctx context.Context) {
	t.Helper()
	spread := r.spec.window - time.Duration(r.spec.messages)*r.spec.gap
	var wg sync.WaitGroup
	for _, m := range r.all {
		m.sentAt = make([]time.Time, r.spec.messages)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Shaping the load, not waiting for a result: the senders spread over the window.
			time.Sleep(time.Duration(rand.Int64N(int64(max(spread, 1)))))
			for seq := range r.spec.messages {
				m.sentAt[seq] = time.Now()
				m.p.send(t, ctx, r.text(m, seq))
				time.Sleep(r.spec.gap)
			}
		}()
	}
	wg.Wait()
}

// lines splits what a member saw into lines: under backlog kumo combines relayed messages into one
// send, one line each (load texts are single lines).
func lines(seen []string) []string {
	var out []string
	for _, s := range seen {
		out = append(out, strings.Split(s, "\n")...)
	}
	return out
}

// relayRE parses a relayed load text as a recipient sees it.
var relayRE = regexp.MustCompile(`^(.+): (LD[0-9a-f]+) (\d+)\.(\d+)\.(\d+) 🚀 <b>x</b>$`)

// waitDelivered waits until every member has every other member's messages, then checks that each
// came exactly once, in its sender's order, under its sender's pseudonym, and only to its room.
func (r *loadRun) waitDelivered(t testing.TB, ctx context.Context) {
	t.Helper()
	want := (r.spec.perRoom - 1) * r.spec.messages
	for {
		short := 0
		for _, m := range r.all {
			n := 0
			for _, s := range lines(m.p.seen()) {
				if strings.Contains(s, r.tag) && !strings.Contains(s, "pw-"+r.tag) {
					n++
				}
			}
			if n < want {
				short++
			}
		}
		if short == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d members still miss messages; kumo's metrics: %v", short, r.k.metrics(t))
		case <-time.After(500 * time.Millisecond):
		}
	}
	for _, m := range r.all {
		next := make(map[int]int) // sender idx -> next seq expected
		for _, s := range lines(m.p.seen()) {
			if !strings.Contains(s, r.tag) || strings.Contains(s, "pw-"+r.tag) {
				continue
			}
			g := relayRE.FindStringSubmatch(s)
			if g == nil || g[2] != r.tag {
				t.Errorf("member %d.%d (%s) received a malformed relay %q", m.room, m.idx, m.p.platform(), s)
				continue
			}
			room, _ := strconv.Atoi(g[3])
			idx, _ := strconv.Atoi(g[4])
			seq, _ := strconv.Atoi(g[5])
			switch {
			case room != m.room:
				t.Errorf("member %d.%d received a message of room %d: %q", m.room, m.idx, room, s)
			case idx == m.idx:
				t.Errorf("member %d.%d received its own message back: %q", m.room, m.idx, s)
			case g[1] != r.members[room][idx].nick:
				t.Errorf("member %d.%d received %q under %q, the sender is %q", m.room, m.idx, s, g[1], r.members[room][idx].nick)
			case seq != next[idx]:
				t.Errorf("member %d.%d (%s): from %d got #%d, want #%d (lost, duplicated or reordered)", m.room, m.idx, m.p.platform(), idx, seq, next[idx])
			}
			next[idx] = seq + 1
		}
		for idx := range r.spec.perRoom {
			if idx != m.idx && next[idx] != r.spec.messages {
				t.Errorf("member %d.%d (%s) got %d of member %d's %d messages", m.room, m.idx, m.p.platform(), next[idx], idx, r.spec.messages)
			}
		}
	}
}

// closeClients disconnects the web visitors and Matrix users.
func (r *loadRun) closeClients() {
	for _, m := range r.all {
		switch p := m.p.(type) {
		case *webPerson:
			p.conn.Close()
		case *mxPerson:
			p.u.Close()
		}
	}
}

// heapFloor samples kumo's metrics until two garbage collections have passed and returns the
// sample with the lowest heap (the closest to the live heap) and the highest heap seen.
func heapFloor(t testing.TB, ctx context.Context, k *kumo) (floor map[string]float64, highest float64) {
	t.Helper()
	first := k.metrics(t)
	floor = first
	for {
		m := k.metrics(t)
		if m["go_memstats_heap_alloc_bytes"] < floor["go_memstats_heap_alloc_bytes"] {
			floor = m
		}
		highest = max(highest, m["go_memstats_heap_alloc_bytes"])
		if m["go_gc_duration_seconds_count"] >= first["go_gc_duration_seconds_count"]+2 {
			return floor, highest
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kumo ran no garbage collection while sampled: %v", m)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// arrivals records when the fake Discord stored each bot message, per channel: the fake keeps no
// timestamps, but its Wait calls a condition after every change of its state.
type arrivals struct {
	mu    sync.Mutex
	times map[string][]time.Time
	track func(channel string) // starts recording a channel
}

// at returns when the fake stored the channel's i-th message (zero if not recorded).
func (a *arrivals) at(channel string, i int) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i < len(a.times[channel]) {
		return a.times[channel][i]
	}
	return time.Time{}
}

func watchDiscord(ctx context.Context, dc *discordtest.Server) *arrivals {
	a := &arrivals{times: map[string][]time.Time{}}
	var channels []string
	var mu sync.Mutex
	a.track = func(ch string) {
		mu.Lock()
		channels = append(channels, ch)
		mu.Unlock()
	}
	go func() {
		_ = dc.Wait(ctx, func() bool {
			now := time.Now()
			mu.Lock()
			chs := append([]string(nil), channels...)
			mu.Unlock()
			a.mu.Lock()
			for _, ch := range chs {
				for n := len(dc.Messages(ch)); len(a.times[ch]) < n; {
					a.times[ch] = append(a.times[ch], now)
				}
			}
			a.mu.Unlock()
			return false
		})
	}()
	return a
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestLoad: 1,000 rooms of 5 members on every platform, every member sending; every message arrives
// exactly once, in order, through the fakes' real rate limits; afterwards kumo is back to its
// baseline of goroutines and memory.
func TestLoad(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	spec := loadSpec{rooms: 1000, perRoom: 5, tg: 100, dc: 100, mx: 4, messages: 3,
		gap: 600 * time.Millisecond, window: 20 * time.Second, lifetime: 100 * time.Second}
	began := time.Now()
	logStep := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	r := startLoad(t, ctx, spec)
	logStep(fmt.Sprintf("%d members connected; baseline: %v goroutines, heap %.1f MB", len(r.all),
		r.base["go_goroutines"], r.base["go_memstats_heap_alloc_bytes"]/1e6))
	r.open(t, ctx)
	logStep("rooms open, members in")
	r.send(t, ctx)
	logStep("all sent")
	r.waitDelivered(t, ctx)
	logStep("all delivered")
	if t.Failed() {
		return
	}
	m := r.k.metrics(t)
	t.Logf("fakes' 429s: Telegram %d, Discord %d; kumo deliveries %v, failed %v", r.tg.Stats().RateLimited, r.dc.RateLimited(),
		m["kumo_deliveries_total"], m["kumo_deliveries_failed_total"])
	if m["kumo_deliveries_failed_total"] != 0 {
		t.Errorf("kumo reports %v failed deliveries", m["kumo_deliveries_failed_total"])
	}

	// The visitors go away (their web sessions wait a minute for them to come back, which overlaps
	// the rest of the rooms' lifetime) and the rooms expire; then kumo is back to its baseline.
	r.closeClients()
	r.k.waitMetric(t, ctx, "every room expired", func(m map[string]float64) bool {
		return m["kumo_rooms_open"] == 0 && m["kumo_members"] == 0
	})
	logStep("rooms expired")
	// Goroutines: a few of slack for the runtime's and the platforms' own (a reconnect in progress,
	// the scrape's connection); a leak per room, member or delivery would leave thousands.
	r.k.waitMetric(t, ctx, "goroutines back to the baseline", func(m map[string]float64) bool {
		return m["go_goroutines"] <= r.base["go_goroutines"]+10
	})
	// The heap: within one GC cycle of the baseline (below twice the highest baseline reading)
	// once the web sessions' resume grace has passed.
	after := r.k.waitMetric(t, ctx, "heap back to the baseline", func(m map[string]float64) bool {
		return m["go_memstats_heap_alloc_bytes"] <= 2*r.baseMax
	})
	logStep(fmt.Sprintf("back to baseline: %v goroutines (baseline %v), heap %.1f MB (baseline %.1f-%.1f MB)",
		after["go_goroutines"], r.base["go_goroutines"], after["go_memstats_heap_alloc_bytes"]/1e6,
		r.base["go_memstats_heap_alloc_bytes"]/1e6, r.baseMax/1e6))
}

// TestLivelyRoom: one room of 10 members each writing once a second, 9 messages a second into every
// member's chat where Telegram and Discord let a bot send about 1, at the fakes' real limits. Every
// message arrives exactly once and in order (kumo combines each recipient's backlog into one send),
// and the fakes answer no 429. Pass and fail never depend on timing: the delays are measured by
// BenchmarkLivelyRoom in ./bridge/.
func TestLivelyRoom(t *testing.T) {
	t.Parallel()
	mixed := []string{"telegram", "telegram", "telegram", "discord", "discord", "discord", "matrix", "matrix", "web", "web"}
	for _, tc := range []struct {
		name  string
		every []string
	}{
		{"telegram", slices.Repeat([]string{"telegram"}, 10)},
		{"discord", slices.Repeat([]string{"discord"}, 10)},
		{"mixed", mixed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			mx := 0
			if slices.Contains(tc.every, "matrix") {
				mx = 1
			}
			spec := loadSpec{rooms: 1, perRoom: len(tc.every), every: tc.every, mx: mx, messages: 20,
				gap: time.Second, window: 21 * time.Second, lifetime: 10 * time.Minute}
			r := startLoad(t, ctx, spec)
			r.open(t, ctx)
			r.send(t, ctx)
			r.waitDelivered(t, ctx)
			if n := r.tg.Stats().RateLimited; n != 0 {
				t.Errorf("the Telegram fake answered %d 429s", n)
			}
			if n := r.dc.RateLimited(); n != 0 {
				t.Errorf("the Discord fake answered %d 429s", n)
			}
			r.closeClients()
		})
	}
}
