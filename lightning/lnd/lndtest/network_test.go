package lndtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

var net_ *Network

func TestMain(m *testing.M) {
	os.Exit(Main(m, func(_ context.Context, n *Network) error { net_ = n; return nil }))
}

// The harness's promise: the payer can pay kumo at once, and pays exactly the amount; and kumo
// can be restarted and paid again.
func TestPayerPaysKumo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			if restart {
				if err := net_.RestartKumo(ctx); err != nil {
					t.Fatal(err)
				}
			}
			before, err := net_.PayerBalance(ctx)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := net_.Kumo.Lightning().AddInvoice(ctx, &lnrpc.Invoice{Value: 1234})
			if err != nil {
				t.Fatal(err)
			}
			pay, err := net_.Pay(ctx, inv.PaymentRequest).Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pay.Status != lnrpc.Payment_SUCCEEDED {
				t.Fatalf("payment %s: %s", pay.Status, pay.FailureReason)
			}
			if err := net_.WaitPayerBalance(ctx, before-1234, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if err := net_.WaitInvoiceState(ctx, fmt.Sprintf("%x", inv.RHash), lnrpc.Invoice_SETTLED, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestProxyCutsAndRestores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := NewProxy(net_.Kumo.RPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	conn, err := dial(p.Addr(), net_.Kumo.TLSCertPath(), net_.Kumo.AdminMacaroonPath())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ln := lnrpc.NewLightningClient(conn)
	for _, step := range []struct {
		down   bool
		wantOK bool
	}{{false, true}, {true, false}, {false, true}} {
		p.SetDown(step.down)
		err := poll(ctx, 20*time.Second, func() error {
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			defer ccancel()
			_, err := ln.GetInfo(cctx, &lnrpc.GetInfoRequest{})
			if (err == nil) != step.wantOK {
				return fmt.Errorf("down=%v: GetInfo error %v", step.down, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Another program takes a port between Start picking it and btcd binding it (a machine shared with
// other test runs): Start begins again on new ports, and the network works.
func TestStartOnTakenPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	first := true
	pick := func() (int, error) {
		if first { // btcd's RPC port, the first one bound
			first = false
			return takenPort, nil
		}
		return freePort()
	}
	n, err := startPicking(ctx, t.TempDir(), pick)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if n.chain.rpcPort == takenPort {
		t.Fatalf("btcd's RPC is on the taken port")
	}
	inv, err := n.Kumo.Lightning().AddInvoice(ctx, &lnrpc.Invoice{Value: 1000})
	if err != nil {
		t.Fatal(err)
	}
	pay, err := n.Pay(ctx, inv.PaymentRequest).Wait(ctx)
	if err != nil || pay.Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("payment %v: %v", pay.GetStatus(), err)
	}
}
