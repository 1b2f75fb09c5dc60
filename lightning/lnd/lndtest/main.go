package lndtest

import (
	"context"
	"fmt"
	"os"
	"time"
)

// StartTimeout bounds how long Main waits for the network (lnd's first start on 2 busy cores can take
// minutes).
const StartTimeout = 15 * time.Minute

// Main is the TestMain of every package whose tests share one regtest network: it starts the network
// in a temporary directory, hands it to setup (which keeps it, bakes macaroons, starts whatever else
// the package shares), runs the tests with m.Run and stops everything. Its result is the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(lndtest.Main(m, func(ctx context.Context, n *lndtest.Network) error { netw = n; return nil })) }
//
// m is anything with Run() int, so a package can wrap testing.M to check something after its tests.
func Main(m interface{ Run() int }, setup func(ctx context.Context, n *Network) error) int {
	dir, err := os.MkdirTemp("", "kumo-lndtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	start := time.Now()
	n, err := Start(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the regtest Lightning network did not start:", err)
		return 1
	}
	defer n.Stop()
	if err := setup(ctx, n); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "regtest network up in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}
