package bridge_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// Load through the core: fake platforms that pace like the real adapters (per chat and bot-wide) and
// count every send that would have been answered 429. Pass/fail is on what people read (every
// message exactly once, in each sender's order) and on the limits (no violation), never on timing:
// delays are reported, and quoted from the benchmarks.

var loadFor = flag.Duration("load", 5*time.Minute, "how long BenchmarkLivelyRoom's members write")

// messenger is one platform as the load sees it: its message limits, the adapter's pacing (its
// DefaultPacing) and the platform's own send limits, past which it answers 429.
type messenger struct {
	name          string
	limits        bridge.Limits
	pacing, limit bridgetest.Pacing
}

// The platforms at their real limits: Telegram about 1 message a second per chat (bursts of 3) and
// 30 a second in all (telegramtest.TelegramLimits); Discord 5 per 5 s per DM and 50 a second in all
// (as token buckets); a homeserver that lets the bot send 5 events a second in bursts of 20 (like
// Dendrite's default threshold of 20), which kumo's default pacing (5/s in bursts of 10) stays under.
var (
	telegramLike = messenger{"telegram", bridge.Limits{MaxText: 4096, Overhead: 12},
		bridgetest.Pacing{PerChat: 1, PerChatBurst: 2, Global: 30, GlobalBurst: 1},
		bridgetest.Pacing{PerChat: 1, PerChatBurst: 3, Global: 30, GlobalBurst: 30}}
	discordLike = messenger{"discord", bridge.Limits{MaxText: 2000, Overhead: 12, LineOverhead: 4},
		bridgetest.Pacing{PerChat: 1, PerChatBurst: 1, Global: 40, GlobalBurst: 10},
		bridgetest.Pacing{PerChat: 1, PerChatBurst: 5, Global: 50, GlobalBurst: 50}}
	matrixLike = messenger{"matrix", bridge.Limits{MaxText: 44000, Overhead: 256, LineOverhead: 16},
		bridgetest.Pacing{Global: 5, GlobalBurst: 10}, bridgetest.Pacing{Global: 5, GlobalBurst: 20}}
	webLike = messenger{"web", bridge.Limits{MaxText: 4096}, bridgetest.Pacing{}, bridgetest.Pacing{}}
)

type loadSpec struct {
	// busy is the lively room: one member per entry, on that platform, each writing every gap.
	busy []messenger
	// busyRooms is how many such rooms there are (0 means 1).
	busyRooms int
	gap       time.Duration
	for_      time.Duration
	// quiet rooms of two members on quietOn, each writing once per quietGap.
	quiet    int
	quietOn  messenger
	quietGap time.Duration
	alone    bool // today's delivery: one send per message, no coalescing
}

type loadResult struct {
	busyDelays, quietDelays []time.Duration
	relayed, sends          map[string]int // per platform: relayed messages read, sends made
	violations              map[string]int
	left                    int           // messages still queued when the run stopped (alone only)
	elapsed                 time.Duration // from the first message written to the last delivered
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// runLoad runs spec and checks what every member read. When drain is set it waits for every message
// to arrive and fails the test if one is missing, doubled or out of order; otherwise (today's pacing,
// which cannot keep up) it measures what arrived during the run.
func runLoad(t testing.TB, spec loadSpec, drain bool) loadResult {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat, cfg.SendAlone, cfg.ShutdownGrace = 0, spec.alone, time.Second
	cfg.DelayWarning = time.Hour // the warning is a reply of its own: keep it out of the counts
	byName := map[string]*bridgetest.Platform{}
	var ps []bridge.Platform
	for _, m := range append(slices.Clone(spec.busy), spec.quietOn) {
		if byName[m.name] == nil {
			p := bridgetest.New(m.name, m.limits)
			byName[m.name] = p
			ps = append(ps, p)
		}
	}
	b, err := bridge.New(cfg, nil, nil, ps...)
	if err != nil {
		t.Fatal(err)
	}
	stop := bridgetest.Run(t, b)

	type member struct {
		p     *bridgetest.Platform
		addr  bridge.Addr
		quiet bool
	}
	// Rooms open all at once: every creator asks, then every other member joins, then all are in.
	nbusy := max(spec.busyRooms, 1)
	var rooms [][]messenger
	for range nbusy {
		rooms = append(rooms, spec.busy)
	}
	for range spec.quiet {
		rooms = append(rooms, []messenger{spec.quietOn, spec.quietOn})
	}
	all := make([][]member, len(rooms))
	for r, ms := range rooms {
		for i, m := range ms {
			p := byName[m.name]
			all[r] = append(all[r], member{p, p.User(fmt.Sprintf("r%d-%d", r, i)), r >= nbusy})
		}
		all[r][0].p.Say(t, all[r][0].addr, "/newroom")
	}
	for _, room := range all {
		pw := room[0].p.WaitText(t, room[0].addr.Chat, "Your room is open").Code
		for _, m := range room[1:] {
			m.p.Say(t, m.addr, pw)
		}
	}
	for _, room := range all {
		for _, m := range room[1:] {
			m.p.WaitText(t, m.addr.Chat, "You joined")
		}
	}
	busy, quiet := all[:nbusy], all[nbusy:]
	for deadline := time.Now().Add(time.Minute); b.Stats().PendingDeliveries > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the rooms' opening messages never went out")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The limits apply from here: setting up a hundred rooms is not what is measured.
	for _, m := range append(slices.Clone(spec.busy), spec.quietOn) {
		byName[m.name].SetPacing(m.pacing, m.limit)
	}
	base := map[string]int{}
	for n, p := range byName {
		base[n] = p.Sends()
	}
	quietChats := map[string]bool{}
	for _, r := range quiet {
		for _, m := range r {
			quietChats[m.addr.Platform+"/"+m.addr.Chat] = true
		}
	}
	var mu sync.Mutex
	res := loadResult{relayed: map[string]int{}, sends: map[string]int{}, violations: map[string]int{}}
	b.ObserveDeliveries(func(ev bridge.DeliveryEvent) {
		if ev.Kind != bridge.KindRelay || ev.Err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if quietChats[ev.To.Platform+"/"+ev.To.Chat] {
			res.quietDelays = append(res.quietDelays, ev.Sent.Sub(ev.Queued))
		} else {
			res.busyDelays = append(res.busyDelays, ev.Sent.Sub(ev.Queued))
		}
	})

	// Every member writes "<who> <n>" every gap from a random phase; quiet ones every quietGap.
	sent := map[string]int{} // author -> messages written
	var wg sync.WaitGroup
	began := time.Now()
	write := func(m member, gap time.Duration) {
		defer wg.Done()
		// Sleeps end with the window: a quiet member whose turn falls after it writes nothing.
		pause := func(d time.Duration) bool {
			left := spec.for_ - time.Since(began)
			time.Sleep(min(d, max(left, 0)))
			return d < left
		}
		if !pause(rand.N(gap)) {
			return
		}
		for n := 0; ; n++ {
			m.p.Say(t, m.addr, m.addr.User+" "+strconv.Itoa(n))
			mu.Lock()
			sent[m.addr.User] = n + 1
			mu.Unlock()
			if !pause(gap) {
				return
			}
		}
	}
	for _, r := range busy {
		for _, m := range r {
			wg.Add(1)
			go write(m, spec.gap)
		}
	}
	for _, r := range quiet {
		wg.Add(1)
		go write(r[0], spec.quietGap)
	}
	wg.Wait()

	// What each member must read: every other member's messages, in order, once.
	want := func(m member, room []member) map[string]int {
		w := map[string]int{}
		for _, o := range room {
			if o.addr != m.addr {
				w[o.addr.User] = sent[o.addr.User]
			}
		}
		return w
	}
	read := func(m member) (map[string]int, error) {
		got := map[string]int{}
		for _, r := range bridgetest.Relayed(m.p.Messages(m.addr.Chat)) {
			who, n, _ := strings.Cut(r.Text, " ")
			k, _ := strconv.Atoi(n)
			if k != got[who] {
				return got, fmt.Errorf("%s read %q after %d of %s's messages: lost, doubled or out of order", m.addr.User, r.Text, got[who], who)
			}
			got[who]++
		}
		return got, nil
	}
	complete := func() bool {
		for _, room := range all {
			for _, m := range room {
				got, err := read(m)
				if err != nil {
					t.Fatal(err)
				}
				for who, n := range want(m, room) {
					if got[who] != n {
						return false
					}
				}
			}
		}
		return true
	}
	if drain {
		for deadline := time.Now().Add(spec.for_ + time.Minute); !complete(); {
			if time.Now().After(deadline) {
				t.Fatalf("not every message arrived a minute after the last was written (%+v)", b.Stats())
			}
			time.Sleep(20 * time.Millisecond)
		}
	} else {
		complete() // still checks order and duplicates of what arrived
		res.left = b.Stats().QueuedMessages
	}
	res.elapsed = time.Since(began)
	stop()
	mu.Lock()
	defer mu.Unlock()
	for n, p := range byName {
		res.sends[n] = p.Sends() - base[n]
		res.violations[n] = p.Violations()
	}
	for _, room := range all {
		for _, m := range room {
			res.relayed[m.addr.Platform] += len(bridgetest.Relayed(m.p.Messages(m.addr.Chat)))
		}
	}
	return res
}

// report says what a run measured, per platform: relayed messages read per send made (how many
// messages one of the platform's sends carried on average) and the delays.
func (r loadResult) report(t testing.TB, name string) {
	var per []string
	for n, s := range r.sends {
		if s > 0 {
			per = append(per, fmt.Sprintf("%s %.1f msgs/send (%d sends, %.1f sends/s)", n, float64(r.relayed[n])/float64(s), s, float64(s)/r.elapsed.Seconds()))
		}
	}
	sort.Strings(per)
	t.Logf("%s: busy p50 %s p99 %s; quiet p50 %s p99 %s; %s; queued at the end %d", name,
		pct(r.busyDelays, .5).Round(time.Millisecond), pct(r.busyDelays, .99).Round(time.Millisecond),
		pct(r.quietDelays, .5).Round(time.Millisecond), pct(r.quietDelays, .99).Round(time.Millisecond),
		strings.Join(per, ", "), r.left)
}

func repeat(m messenger, n int) []messenger {
	out := make([]messenger, n)
	for i := range out {
		out[i] = m
	}
	return out
}

var mixed = []messenger{telegramLike, telegramLike, telegramLike, discordLike, discordLike, discordLike, matrixLike, matrixLike, webLike, webLike}

// A lively room: 10 members each writing once a second, 9 messages a second into every member's
// chat where Telegram and Discord let the bot send 1. With quiet rooms beside it (one message a
// minute each), sharing the bot-wide budget.
func TestLivelyRoomsKeepUp(t *testing.T) {
	window := 20 * time.Second
	if testing.Short() {
		window = 5 * time.Second
	}
	tests := []struct {
		name string
		spec loadSpec
	}{
		{"telegram", loadSpec{busy: repeat(telegramLike, 10)}},
		{"discord", loadSpec{busy: repeat(discordLike, 10)}},
		{"mixed", loadSpec{busy: mixed}},
		{"telegram with 100 quiet rooms", loadSpec{busy: repeat(telegramLike, 10), quiet: 100, quietOn: telegramLike, quietGap: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.gap, spec.for_ = time.Second, window
			if spec.quietOn.name == "" {
				spec.quietOn = spec.busy[0]
			}
			res := runLoad(t, spec, true)
			for n, v := range res.violations {
				if v != 0 {
					t.Errorf("%s: %d sends past the platform's limits (429s)", n, v)
				}
			}
			res.report(t, tc.name)
		})
	}
}

// BenchmarkLivelyRoom runs the load for -load (default 5 minutes) per case, today's pacing (one send
// per message) against coalescing, and reports the delays and messages per send. Run:
//
//	go test -tags goolm -run '^$' -bench LivelyRoom -benchtime 1x -timeout 2h -v ./bridge/ -args -load 5m
func BenchmarkLivelyRoom(b *testing.B) {
	cases := []struct {
		name string
		spec loadSpec
	}{
		{"telegram", loadSpec{busy: repeat(telegramLike, 10)}},
		{"discord", loadSpec{busy: repeat(discordLike, 10)}},
		{"mixed", loadSpec{busy: mixed}},
		{"telegram+100quiet", loadSpec{busy: repeat(telegramLike, 10), quiet: 100, quietOn: telegramLike, quietGap: time.Minute}},
		// Four lively rooms ask for 40 sends a second where Telegram allows the bot 30 in all.
		{"telegram4busy+100quiet", loadSpec{busy: repeat(telegramLike, 10), busyRooms: 4, quiet: 100, quietOn: telegramLike, quietGap: time.Minute}},
	}
	for _, c := range cases {
		for _, alone := range []bool{true, false} {
			name := c.name + "/coalesced"
			if alone {
				name = c.name + "/alone"
			}
			b.Run(name, func(b *testing.B) {
				spec := c.spec
				spec.gap, spec.for_, spec.alone = time.Second, *loadFor, alone
				if spec.quietOn.name == "" {
					spec.quietOn = spec.busy[0]
				}
				for range b.N {
					res := runLoad(b, spec, !alone)
					for n, v := range res.violations {
						if v != 0 {
							b.Errorf("%s: %d sends past the platform's limits", n, v)
						}
					}
					res.report(b, name)
					b.ReportMetric(pct(res.busyDelays, .5).Seconds(), "p50-s")
					b.ReportMetric(pct(res.busyDelays, .99).Seconds(), "p99-s")
					if len(res.quietDelays) > 0 {
						b.ReportMetric(pct(res.quietDelays, .99).Seconds(), "quiet-p99-s")
					}
					relayed, sends := 0, 0
					for n := range res.sends {
						relayed, sends = relayed+res.relayed[n], sends+res.sends[n]
					}
					b.ReportMetric(float64(relayed)/float64(max(sends, 1)), "msgs/send")
				}
			})
		}
	}
}
