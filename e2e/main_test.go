package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/lightning/lnd/lndtest"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
)

// What the whole package shares, started once in TestMain: the real binary, one Dendrite and one
// regtest Lightning network. Fakes of Telegram and Discord are cheap and start per test.
var (
	kumoBin  string
	hs       *matrixtest.Server
	netw     *lndtest.Network
	macaroon string // kumo's invoice-only macaroon on the regtest node

	// lndMu keeps the tests that restart kumo's lnd node apart from those that pay through it:
	// payers hold it for reading, restarters for writing.
	lndMu sync.RWMutex

	// secrets holds every message text and password any test used; every kumo process's output is
	// checked against all of them (privacy), and TestMain checks all outputs once more at the end.
	secrets = &secretSet{}
	outputs = &outputSet{}
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "kumo-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	flag.Parse()
	// The binary and Dendrite start while lndtest.Main starts the regtest network.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	others, othersDone := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(othersDone)
		others <- startOthers(ctx, tmp)
	}()
	code := lndtest.Main(checked{m}, func(ctx context.Context, n *lndtest.Network) (err error) {
		netw = n
		if macaroon, err = n.BakeKumoMacaroon(ctx, "kumo-e2e", lnd.Permissions...); err != nil {
			return err
		}
		return <-others
	})
	cancel() // ends startOthers at once if the network failed first
	<-othersDone
	if hs != nil {
		if code != 0 {
			fmt.Fprintln(os.Stderr, "dendrite output (tail):\n"+hs.Logs())
		}
		hs.Close()
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

// startOthers builds the real binary and starts Dendrite.
func startOthers(ctx context.Context, tmp string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	// The real binary. Tests run it race-detecting, so a race anywhere in kumo fails the run;
	// benchmarks run the binary an operator runs, without the race detector's slowdown.
	args := []string{"build", "-tags", "goolm", "-race", "-o", filepath.Join(tmp, "kumo"), "./cmd/kumo"}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		args = slices.Delete(args, 3, 4)
		fmt.Fprintln(os.Stderr, "benchmarks: kumo is built without -race")
	}
	kumoBin = filepath.Join(tmp, "kumo")
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building kumo: %w\n%s", err, out)
	}
	if hs, err = matrixtest.Start(ctx); err != nil {
		return fmt.Errorf("dendrite did not start: %w", err)
	}
	return nil
}

// checked runs the tests, then checks privacy over the whole run: no output of any kumo process
// holds any text or password any test used (each process was also checked when it ended, against
// what was known then).
type checked struct{ m *testing.M }

func (c checked) Run() int {
	code := c.m.Run()
	if leaks := outputs.leaks(secrets); len(leaks) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: kumo's logs hold message texts or passwords:")
		for _, l := range leaks {
			fmt.Fprintln(os.Stderr, "  "+l)
		}
		code = 1
	}
	return code
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the kumo module")
	}
	return filepath.Dir(gomod), nil
}

// secretSet is every text and password the tests sent; none may reach a log.
type secretSet struct {
	mu   sync.Mutex
	list []string
}

// add registers s and returns it, so a test writes secret("...") where it makes up a text.
func (s *secretSet) add(v string) string {
	s.mu.Lock()
	s.list = append(s.list, v)
	s.mu.Unlock()
	return v
}

func (s *secretSet) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.list...)
}

func secret(v string) string { return secrets.add(v) }

// outputSet is the captured output of every kumo process.
type outputSet struct {
	mu    sync.Mutex
	procs []*kumo
}

func (o *outputSet) add(k *kumo) {
	o.mu.Lock()
	o.procs = append(o.procs, k)
	o.mu.Unlock()
}

func (o *outputSet) leaks(s *secretSet) []string {
	o.mu.Lock()
	procs := append([]*kumo(nil), o.procs...)
	o.mu.Unlock()
	all := s.all()
	var out []string
	for _, k := range procs {
		out = append(out, findLeaks(k.name, k.output(), all)...)
	}
	return out
}

// findLeaks names every secret that occurs in log. Secrets shorter than 8 bytes are not checked:
// they would match by chance (a one-word test text) and none of the tests' secrets is that short.
func findLeaks(name, log string, secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(log, s) {
			out = append(out, fmt.Sprintf("%s: output contains %q", name, s))
		}
	}
	return out
}
