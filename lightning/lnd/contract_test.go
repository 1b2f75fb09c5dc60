package lnd_test

import (
	"context"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/lightning/paymentstest"
)

// lndHarness runs the shared Payments contract against kumo's regtest node; the wallet is the
// payer node, over a real channel.
type lndHarness struct{}

func (lndHarness) New(t *testing.T) bridge.Payments {
	log, _ := testLog(t)
	b, err := lnd.New(testCtx(t), kumoConfig(netw.Kumo.RPCAddr), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func (lndHarness) Pay(t *testing.T, ctx context.Context, _ bridge.Payments, inv bridge.Invoice) func(context.Context) bool {
	p := netw.Pay(ctx, inv.BOLT11)
	return func(ctx context.Context) bool {
		res, err := p.Wait(ctx)
		return err == nil && res.GetStatus() == lnrpc.Payment_SUCCEEDED
	}
}

func (lndHarness) ShortExpiry() time.Duration { return 2 * time.Second }
func (lndHarness) Timeout() time.Duration     { return 30 * time.Second }

func TestPaymentsContract(t *testing.T) { paymentstest.Run(t, lndHarness{}) }
