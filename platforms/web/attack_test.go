package web_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/platforms/web"
)

// The attacker's view of the guess limits through the real edge: kumo's web adapter and core, a
// gorilla WebSocket client speaking the page's protocol, a new WebSocket (a new visitor, so a new
// person to the core) for every guess.

// wsEvent is what these tests read of the page's protocol.
type wsEvent struct {
	Type  string   `json:"type"`
	Kind  string   `json:"kind"`
	From  string   `json:"from"`
	Text  string   `json:"text"`
	Code  string   `json:"code"`
	Token string   `json:"token"`
	Media *wsMedia `json:"media"`
}

// wsMedia is a file offered in a "msg" event: the address the page fetches it from.
type wsMedia struct {
	URL  string `json:"url"`
	Size int    `json:"size"`
}

// wsChat is one visitor's WebSocket; token is its session's secret, from the hello.
type wsChat struct {
	conn  *websocket.Conn
	token string
}

// openChat opens the WebSocket as a new visitor, claiming X-Forwarded-For xff when it is not empty,
// and reads its hello. A refused connection (the connection caps close it at once) is an error.
func openChat(base, xff string) (*wsChat, error) {
	hdr := http.Header{"Origin": {base}}
	if xff != "" {
		hdr.Set("X-Forwarded-For", xff)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", hdr)
	if err != nil {
		return nil, err
	}
	c := &wsChat{conn: conn}
	if err := conn.WriteJSON(map[string]string{"type": "hello"}); err != nil {
		conn.Close()
		return nil, err
	}
	ev, err := c.next()
	if err == nil && (ev.Type != "hello" || ev.Token == "") {
		err = fmt.Errorf("first event %+v, want a hello", ev)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.token = ev.Token
	return c, nil
}

func (c *wsChat) next() (wsEvent, error) {
	var ev wsEvent
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	err := c.conn.ReadJSON(&ev)
	return ev, err
}

func (c *wsChat) say(text string) error {
	return c.conn.WriteJSON(map[string]string{"type": "text", "text": text})
}

// until reads the visitor's messages until one satisfies ok (10 s at most per event).
func (c *wsChat) until(ok func(wsEvent) bool) (wsEvent, error) {
	for {
		ev, err := c.next()
		if err != nil {
			return ev, err
		}
		if ev.Type == "msg" && ok(ev) {
			return ev, nil
		}
	}
}

// openChatRetrying is openChat that tries again, up to 100 times, when the per-address connection
// cap refused it (1008): the attacker's previous sockets may not have been released by kumo yet.
func openChatRetrying(base, xff string, refused *atomic.Int64) (*wsChat, error) {
	for range 100 {
		c, err := openChat(base, xff)
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation {
			refused.Add(1)
			continue
		}
		return c, err
	}
	return nil, errors.New("refused 100 times by the connection cap")
}

// Answers to a guess: checked ("No live room has that password...") or refused unchecked.
const (
	answerChecked = "o live room has that password"
	answerBusy    = "Busy:"
)

// webGuess sends one guess over a new WebSocket and tells whether it was checked (false: answered
// busy, try again in ...).
func webGuess(base, xff, text string, refused *atomic.Int64) (checked bool, err error) {
	c, err := openChatRetrying(base, xff, refused)
	if err != nil {
		return false, err
	}
	defer c.conn.Close()
	if err := c.say(text); err != nil {
		return false, err
	}
	ev, err := c.until(func(wsEvent) bool { return true })
	switch {
	case err != nil:
		return false, err
	case strings.Contains(ev.Text, answerChecked):
		return true, nil
	case strings.Contains(ev.Text, answerBusy) && strings.Contains(ev.Text, "Try again in"):
		return false, nil
	}
	return false, fmt.Errorf("guess answered %q", ev.Text)
}

// attackClock is the core's clock here: the guess limits refill only when the test moves it.
type attackClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *attackClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *attackClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var localProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// An attacker opening a new WebSocket per guess, from one address, or claiming a new address per
// guess in X-Forwarded-For (believed only through a trusted proxy), gets no more guesses checked
// than the address's budget or the global budget allow, and "busy, try again in ..." past them; the
// right password joins once the wait is over; members in the room keep talking throughout.
func TestWebGuessingWithNewWebSockets(t *testing.T) {
	const (
		window    = 15 * time.Minute
		perOrigin = 6
		global    = 20
	)
	manyIPs := func(i int) string { return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1) }
	cases := []struct {
		name    string
		proxies []netip.Prefix
		xff     func(i int) string
		budget  int // the limit that binds
	}{
		{"one ip", nil, func(int) string { return "" }, perOrigin},
		{"one ip claiming many in X-Forwarded-For, no trusted proxy", nil, manyIPs, perOrigin},
		{"many ips through the trusted proxy", localProxy, manyIPs, global},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &attackClock{t: time.Now()}
			cfg := bridge.DefaultConfig()
			cfg.PriceSat = 0
			cfg.Now = clk.Now
			cfg.Rooms.FailureWindow = window
			cfg.Rooms.MaxFailuresPerOrigin = perOrigin
			cfg.Rooms.MaxFailuresGlobal = global
			k := startKumoWith(t, cfg, []web.Option{web.WithTrustedProxies(c.proxies)})

			var refused atomic.Int64
			alice, err := openChat(k.url, "")
			if err != nil {
				t.Fatal(err)
			}
			defer alice.conn.Close()
			if err := alice.say("/newroom"); err != nil {
				t.Fatal(err)
			}
			open, err := alice.until(func(ev wsEvent) bool { return strings.Contains(ev.Text, "Your room is open") })
			if err != nil || open.Code == "" {
				t.Fatalf("no room opened: %v %+v", err, open)
			}
			password := open.Code
			bob, err := openChat(k.url, "")
			if err != nil {
				t.Fatal(err)
			}
			defer bob.conn.Close()
			if err := bob.say(password); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.until(func(ev wsEvent) bool { return strings.Contains(ev.Text, "You joined") }); err != nil {
				t.Fatal(err)
			}

			n := 0 // guesses sent
			guess := func(count int, text func(i int) string) (checked, busy int) {
				t.Helper()
				for range count {
					ok, err := webGuess(k.url, c.xff(n), text(n), &refused)
					if err != nil {
						t.Fatalf("guess %d: %v", n, err)
					}
					n++
					if ok {
						checked++
					} else {
						busy++
					}
				}
				return checked, busy
			}
			total, busyTotal := 0, 0
			for round := range 3 {
				checked, busy := guess(c.budget, func(i int) string { return fmt.Sprintf("/join guess number %06d", i) })
				total += checked
				busyTotal += busy
				if total > c.budget {
					t.Fatalf("round %d: %d guesses checked in all, budget %d", round, total, c.budget)
				}
				if round > 0 && checked != 0 {
					t.Fatalf("round %d: %d more guesses checked with no time passing", round, checked)
				}
				// Members keep relaying during the attack.
				text := fmt.Sprintf("still here, round %d", round)
				if err := alice.say(text); err != nil {
					t.Fatal(err)
				}
				if _, err := bob.until(func(ev wsEvent) bool { return ev.Kind == "relay" && ev.Text == text }); err != nil {
					t.Fatalf("round %d: bob did not get alice's message: %v", round, err)
				}
			}
			if total != c.budget || busyTotal != 2*c.budget {
				t.Fatalf("%d guesses checked and %d answered busy, want exactly the budget %d checked and the other %d busy",
					total, busyTotal, c.budget, 2*c.budget)
			}
			// Past the limit even the right password is not looked at.
			if ok, err := webGuess(k.url, c.xff(n), password, &refused); err != nil || ok {
				t.Fatalf("the right password past the limit: checked %v, %v; want busy", ok, err)
			}

			// Half a window refills half the budget: the sustained rate is the budget per window.
			clk.Add(window / 2)
			if checked, _ := guess(c.budget, func(i int) string { return fmt.Sprintf("guess number %06d", i) }); checked < c.budget/2-1 || checked > c.budget/2 {
				t.Fatalf("after half a window %d guesses checked, want about %d", checked, c.budget/2)
			}

			// Once the wait is over the right password joins, from the attacked address.
			clk.Add(window)
			late, err := openChatRetrying(k.url, c.xff(n), &refused)
			if err != nil {
				t.Fatal(err)
			}
			defer late.conn.Close()
			if err := late.say(password); err != nil {
				t.Fatal(err)
			}
			if _, err := late.until(func(ev wsEvent) bool { return strings.Contains(ev.Text, "You joined") }); err != nil {
				t.Fatalf("the right password after the wait: %v", err)
			}
			if _, err := alice.until(func(ev wsEvent) bool { return ev.Kind == "notice" && strings.Contains(ev.Text, "joined. 3 members") }); err != nil {
				t.Fatalf("alice was not told of the third member: %v", err)
			}
			t.Logf("%d guesses over %d WebSockets (%d refused by the connection cap and retried)", n, n+int(refused.Load()), refused.Load())
		})
	}
}

// BenchmarkWebGuessing: an attacker against kumo with the default limits, over real WebSockets to the
// web adapter and core, a new WebSocket per guess, 4 at a time, from one address or claiming a new
// address per guess through a trusted proxy. It reports the answers per second the attacker gets,
// the guesses per second actually checked against the live rooms, how many were checked in all (the
// per-address budget, rooms.max_failures_per_origin, or the global one, rooms.max_failures_global,
// each per rooms.failure_window) and how many connections the per-address cap refused.
//
//	go test -tags goolm -run '^$' -bench WebGuessing -benchtime 5000x ./platforms/web/
func BenchmarkWebGuessing(b *testing.B) {
	for _, c := range []struct {
		name    string
		proxies []netip.Prefix
		xff     func(i int) string
	}{
		{"one-ip", nil, func(int) string { return "" }},
		{"many-ips-via-proxy", localProxy, func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := bridge.DefaultConfig()
			cfg.PriceSat = 0
			k := startKumoWith(b, cfg, []web.Option{web.WithTrustedProxies(c.proxies)})
			creator, err := openChat(k.url, "")
			if err != nil {
				b.Fatal(err)
			}
			defer creator.conn.Close()
			if err := creator.say("/newroom"); err != nil {
				b.Fatal(err)
			}
			if _, err := creator.until(func(ev wsEvent) bool { return strings.Contains(ev.Text, "Your room is open") }); err != nil {
				b.Fatal(err)
			}

			const workers = 4
			var next, checked atomic.Int64
			var refused atomic.Int64
			errs := make(chan error, workers)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
						ok, err := webGuess(k.url, c.xff(i), fmt.Sprintf("/join guess number %08d", i), &refused)
						if err != nil {
							errs <- fmt.Errorf("guess %d: %w", i, err)
							return
						}
						if ok {
							checked.Add(1)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start).Seconds()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed, "answered/s")
			b.ReportMetric(float64(checked.Load())/elapsed, "checked/s")
			b.ReportMetric(float64(checked.Load()), "checked")
			b.ReportMetric(float64(refused.Load()), "conn-refused")
		})
	}
}
