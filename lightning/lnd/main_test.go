package lnd_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/lightning/lnd/lndtest"
	"github.com/kumo-chat/kumo/lightning/paymentstest"
)

// One real regtest network (btcd, kumo's lnd, a payer's lnd with a channel to it) for the whole
// package: starting it takes about 15 s.
var (
	netw *lndtest.Network
	// kumoMacaroon is baked with exactly lnd.Permissions: every test runs kumo with it, which is the
	// proof that those permissions are enough.
	kumoMacaroon string
)

func TestMain(m *testing.M) {
	os.Exit(lndtest.Main(m, func(ctx context.Context, n *lndtest.Network) (err error) {
		netw = n
		kumoMacaroon, err = n.BakeKumoMacaroon(ctx, "kumo", lnd.Permissions...)
		return err
	}))
}

const price = 1000 // sat

// testCtx bounds one test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testLog(t *testing.T) (*slog.Logger, *bridgetest.LogBuffer) {
	buf := &bridgetest.LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// instance is the tag of the kumo deployment the tests run, one after the other: each test's
// backend is a restart of the previous test's, and cancels what that one left, as kumo would.
// TestInstancesShareANode runs deployments of other tags beside it.
const instance = "lndtest"

func kumoConfig(addr string) lnd.Config {
	return lnd.Config{Address: addr, TLSCert: netw.Kumo.TLSCertPath(), Macaroon: kumoMacaroon, Instance: instance}
}

// running is a Backend whose Run is going.
type running struct {
	*lnd.Backend
	rec  *paymentstest.Events
	logs *bridgetest.LogBuffer
	stop func()
}

// startBackend connects a backend to kumo's node at addr (its RPC address, or a proxy in front of it)
// and runs it until the test ends or stop is called.
func startBackend(t *testing.T, addr string) *running {
	t.Helper()
	return runBackend(t, kumoConfig(addr))
}

// runBackend is startBackend with a configuration of the test's own.
func runBackend(t *testing.T, cfg lnd.Config) *running {
	t.Helper()
	log, logs := testLog(t)
	b, err := lnd.New(testCtx(t), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Backend: b, rec: &paymentstest.Events{}, logs: logs}
	run := bridgetest.Background(t, "lnd backend", func(ctx context.Context) error { return b.Run(ctx, r.rec.Notify) })
	r.stop = func() {
		run.Stop()
		b.Close()
	}
	t.Cleanup(r.stop)
	return r
}
