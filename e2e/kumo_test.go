package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// setup is what one kumo process is started with.
type setup struct {
	PriceSat int64
	Lifetime time.Duration
	// Flood limits per person (0: kumo's defaults).
	FloodRate  float64
	FloodBurst int
	// MediaMemory is rooms.media_memory (0: kumo's default).
	MediaMemory int64
	Telegram    *telegramtest.Server
	// TelegramURL, when set, replaces Telegram's URL (a fault-injecting proxy in front of the fake).
	TelegramURL string
	Discord     *discordtest.Server
	Matrix      bool // a fresh bot account on the shared Dendrite
	// Homeserver, when set, is the Dendrite the bot (and newMX's users) live on instead of the shared
	// one (implies Matrix): a test that restarts its homeserver must not cut the others'.
	Homeserver *matrixtest.Server
	Web        bool
	LND        bool // real payments on regtest; otherwise the development backend
	// LNDAddr, when set, replaces the address of kumo's lnd (a proxy the test can cut).
	LNDAddr  string
	LogLevel string
}

// kumo is one running kumo process.
type kumo struct {
	t      testing.TB
	name   string
	work   string // its working directory and HOME: it must stay empty
	config string
	env    []string
	url    string // http://host:port of /healthz, /metrics and the web chat
	// MatrixBot is the bot's Matrix id when Matrix is on, on homeserver.
	matrixBot  string
	homeserver *matrixtest.Server

	// startup is exec -> /healthz answering 200.
	startup time.Duration

	stdout, stderr *bridgetest.LogBuffer
	cmd            *exec.Cmd
	done           chan struct{}
	waitErr        error
	killed         atomic.Bool // stopped with SIGKILL on purpose: no clean exit expected
}

var procSeq atomic.Int64

// startKumo writes a config for s and runs the binary with it; the process is stopped (SIGTERM) and
// checked (clean exit, no race, no secret in its output, no file written) when the test ends.
func startKumo(t testing.TB, s setup) *kumo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := procSeq.Add(1)
	confDir := t.TempDir()
	k := &kumo{t: t, name: fmt.Sprintf("kumo#%d(%s)", n, t.Name()), config: filepath.Join(confDir, "kumo.yaml")}
	// The working directory and HOME are a fresh directory of their own, outside t.TempDir (which
	// the config shares), so that "nothing was created there" is checked on a directory only kumo
	// could have written to.
	work, err := os.MkdirTemp("", "kumo-work-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	k.work = work

	var y strings.Builder
	fmt.Fprintf(&y, "rooms:\n  price_sat: %d\n  lifetime: %s\n  invoice_expiry: 10m\n  max_members: 50\n  warnings: []\n", s.PriceSat, s.Lifetime)
	// Every simulated person here comes from 127.0.0.1 (one web origin) and the load runs open
	// hundreds of rooms with chosen passwords (each a counted guess): the guess and invoice limits
	// meant for attackers are raised so they do not throttle the harness itself.
	y.WriteString("  max_failures_per_origin: 100000\n  max_failures_global: 5000\n  max_pending_per_origin: 100000\n  max_pending_global: 100000\n")
	if s.FloodRate > 0 {
		fmt.Fprintf(&y, "  flood_rate: %g\n  flood_burst: %d\n", s.FloodRate, s.FloodBurst)
	}
	if s.MediaMemory > 0 {
		fmt.Fprintf(&y, "  media_memory: %d\n", s.MediaMemory)
	}
	if s.LND {
		addr := netw.Kumo.RPCAddr
		if s.LNDAddr != "" {
			addr = s.LNDAddr
		}
		// Every kumo of the run shares one lnd node, as several deployments may: each is a deployment
		// of its own (its restarts keep the config, so the tag), and cancels only its own leftovers.
		fmt.Fprintf(&y, "lightning:\n  backend: lnd\n  lnd:\n    address: %s\n    tls_cert: %s\n    macaroon: %s\n    instance: e2e-%d\n",
			addr, netw.Kumo.TLSCertPath(), macaroon, n)
	} else {
		y.WriteString("lightning:\n  backend: dev\n")
	}
	var env []string
	if s.Telegram != nil {
		u := s.Telegram.URL()
		if s.TelegramURL != "" {
			u = s.TelegramURL
		}
		fmt.Fprintf(&y, "telegram:\n  api_url: %s\n", u)
		env = append(env, "KUMO_TELEGRAM_TOKEN="+s.Telegram.Token())
	}
	if s.Discord != nil {
		fmt.Fprintf(&y, "discord:\n  api_url: %s\n", s.Discord.URL)
		env = append(env, "KUMO_DISCORD_TOKEN="+s.Discord.Token())
	}
	if s.Matrix || s.Homeserver != nil {
		k.homeserver = hs
		if s.Homeserver != nil {
			k.homeserver = s.Homeserver
		}
		local := fmt.Sprintf("kumobot%d", n)
		pw := "bot-password-" + strconv.FormatInt(n, 10)
		if _, err := k.homeserver.Register(ctx, local, pw); err != nil {
			t.Fatal(err)
		}
		k.matrixBot = matrixtest.UserID(local).String()
		fmt.Fprintf(&y, "matrix:\n  homeserver: %s\n  user_id: %q\n", k.homeserver.URL, k.matrixBot)
		env = append(env, "KUMO_MATRIX_PASSWORD="+pw)
	}
	if s.Web {
		// Thousands of simulated visitors share 127.0.0.1: the per-address cap meant for one abusive
		// client is raised so the harness can open them.
		y.WriteString("web:\n  enabled: true\n  max_connections_per_ip: 100000\n  max_connections: 100000\n")
	}
	level := s.LogLevel
	if level == "" {
		level = "debug" // privacy is checked at the most talkative level
	}
	fmt.Fprintf(&y, "http:\n  listen: 127.0.0.1:0\nlog:\n  level: %s\n  format: text\n", level)
	if err := os.WriteFile(k.config, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	k.env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "TMPDIR=" + work}, env...)
	outputs.add(k)
	k.start(ctx)
	t.Cleanup(k.finish)
	return k
}

// restart runs a new process on the same config and directory (after stop or kill).
func (k *kumo) restart() *kumo {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := &kumo{t: k.t, name: k.name + "+restarted", work: k.work, config: k.config, env: k.env, matrixBot: k.matrixBot, homeserver: k.homeserver}
	outputs.add(n)
	n.start(ctx)
	k.t.Cleanup(n.finish)
	return n
}

var listening = regexp.MustCompile(`health and metrics on (http://[0-9.:]+)/healthz`)

func (k *kumo) start(ctx context.Context) {
	t := k.t
	t.Helper()
	k.stdout, k.stderr = &bridgetest.LogBuffer{}, &bridgetest.LogBuffer{}
	k.cmd = exec.Command(kumoBin, "-config", k.config)
	k.cmd.Dir = k.work
	k.cmd.Env = k.env
	k.cmd.Stdout, k.cmd.Stderr = k.stdout, k.stderr
	k.done = make(chan struct{})
	begin := time.Now()
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		k.waitErr = k.cmd.Wait()
		close(k.done)
	}()
	for k.url == "" {
		if m := listening.FindStringSubmatch(k.stdout.String()); m != nil {
			k.url = m[1]
			break
		}
		select {
		case <-k.done:
			t.Fatalf("%s exited at start: %v\n%s", k.name, k.waitErr, k.output())
		case <-ctx.Done():
			t.Fatalf("%s never said where it listens\n%s", k.name, k.output())
		case <-time.After(5 * time.Millisecond):
		}
	}
	for {
		resp, err := http.Get(k.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-k.done:
			t.Fatalf("%s exited at start: %v\n%s", k.name, k.waitErr, k.output())
		case <-ctx.Done():
			t.Fatalf("%s: /healthz never answered 200\n%s", k.name, k.output())
		case <-time.After(5 * time.Millisecond):
		}
	}
	k.startup = time.Since(begin)
}

// output is everything the process wrote, stdout then stderr.
func (k *kumo) output() string { return k.stdout.String() + k.stderr.String() }

// running reports whether the process has not exited.
func (k *kumo) running() bool {
	select {
	case <-k.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the process to exit, failing the test if it does not exit
// cleanly within d.
func (k *kumo) stop(d time.Duration) {
	k.t.Helper()
	if !k.running() {
		return
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	begin := time.Now()
	select {
	case <-k.done:
		k.t.Logf("%s stopped %.1fs after SIGTERM", k.name, time.Since(begin).Seconds())
		if k.waitErr != nil {
			k.t.Errorf("%s: exit after SIGTERM: %v\n%s", k.name, k.waitErr, tail(k.output(), 4000))
		}
	case <-time.After(d):
		_ = k.cmd.Process.Kill()
		<-k.done
		k.t.Errorf("%s did not stop within %s of SIGTERM\n%s", k.name, d, tail(k.output(), 4000))
	}
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would.
func (k *kumo) kill() {
	k.killed.Store(true)
	_ = k.cmd.Process.Kill()
	<-k.done
}

// finish stops the process if the test did not, then checks what it left behind.
func (k *kumo) finish() {
	t := k.t
	k.stop(45 * time.Second)
	out := k.output()
	if strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("%s: the race detector found a data race:\n%s", k.name, tail(out, 20000))
	}
	if strings.Contains(out, "panic:") {
		t.Errorf("%s panicked:\n%s", k.name, tail(out, 20000))
	}
	for _, l := range findLeaks(k.name, out, secrets.all()) {
		t.Error(l)
	}
	// kumo keeps everything in memory: it must not have created anything in its working directory
	// (which is also its HOME and TMPDIR).
	if k.killed.Load() {
		return // the restarted process checks the directory
	}
	var created []string
	_ = filepath.WalkDir(k.work, func(p string, d os.DirEntry, err error) error {
		if p != k.work {
			created = append(created, p)
		}
		return nil
	})
	if len(created) > 0 {
		t.Errorf("%s wrote files: %v", k.name, created)
	}
}

// waitOutput waits until the process has written s.
func waitOutput(t testing.TB, ctx context.Context, k *kumo, s string) {
	t.Helper()
	for !strings.Contains(k.output(), s) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s never wrote %q\n%s", k.name, s, tail(k.output(), 4000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// metricsClient opens a new connection per scrape, so that an idle keep-alive connection (a
// goroutine in kumo) never counts in the goroutine comparisons.
var metricsClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// metrics reads kumo's /metrics (unlabelled series only).
func (k *kumo) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := metricsClient.Get(k.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// waitMetric waits until cond holds for kumo's metrics.
func (k *kumo) waitMetric(t testing.TB, ctx context.Context, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	for {
		m := k.metrics(t)
		if cond(m) {
			return m
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: waited for %s; metrics now: rooms %v members %v goroutines %v heap %v", k.name, what,
				m["kumo_rooms_open"], m["kumo_members"], m["go_goroutines"], m["go_memstats_heap_alloc_bytes"])
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
