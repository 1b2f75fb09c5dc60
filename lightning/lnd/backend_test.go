package lnd_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/lightning/lnd/lndtest"
)

func TestStartupCheck(t *testing.T) {
	ctx := testCtx(t)
	readOnly, err := netw.BakeKumoMacaroon(ctx, "info-only", "info:read")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	mac, err := os.ReadFile(kumoMacaroon)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "kumo.macaroon"), mac, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	closed, err := lndtest.NewProxy(netw.Kumo.RPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()
	closed.SetDown(true)

	tests := []struct {
		name    string
		cfg     lnd.Config
		wantErr string // "" = starts
	}{
		{"restricted macaroon", kumoConfig(netw.Kumo.RPCAddr), ""},
		{"macaroon under ~", lnd.Config{Address: netw.Kumo.RPCAddr, TLSCert: netw.Kumo.TLSCertPath(), Macaroon: "~/kumo.macaroon", Instance: instance}, ""},
		{"empty", lnd.Config{}, "lightning.lnd.address is empty: set it to host:port of lnd's gRPC, e.g. 127.0.0.1:10009\nlightning.lnd.tls_cert is empty"},
		{"no instance", withInstance(""), "lightning.lnd.instance must be"},
		{"instance with a space", withInstance("shop eu"), "lightning.lnd.instance must be"},
		{"instance like a token", withInstance("123456:AAE"), "lightning.lnd.instance must be"},
		{"instance too long", withInstance(strings.Repeat("a", 25)), "lightning.lnd.instance must be"},
		{"instance starting with a dash", withInstance("-x"), "lightning.lnd.instance must be"},
		{"instance of 24", withInstance(strings.Repeat("a", 24)), ""},
		{"instance with dots and dashes", withInstance("shop-eu.2_b"), ""},
		{"unreachable", kumoConfig(closed.Addr()), "cannot reach lnd"},
		{"missing cert", lnd.Config{Address: netw.Kumo.RPCAddr, TLSCert: filepath.Join(home, "nope.cert"), Macaroon: kumoMacaroon, Instance: instance}, "reading tls_cert"},
		{"missing macaroon", lnd.Config{Address: netw.Kumo.RPCAddr, TLSCert: netw.Kumo.TLSCertPath(), Macaroon: "~/nope.macaroon", Instance: instance}, "reading macaroon"},
		{"wrong cert", lnd.Config{Address: netw.Kumo.RPCAddr, TLSCert: netw.Payer.TLSCertPath(), Macaroon: kumoMacaroon, Instance: instance}, "cannot reach lnd"},
		{"macaroon without invoices", lnd.Config{Address: netw.Kumo.RPCAddr, TLSCert: netw.Kumo.TLSCertPath(), Macaroon: readOnly, Instance: instance}, "may not read invoices"},
		{"macaroon of another node", lnd.Config{Address: netw.Kumo.RPCAddr, TLSCert: netw.Kumo.TLSCertPath(), Macaroon: netw.Payer.AdminMacaroonPath(), Instance: instance}, "refused the macaroon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := testLog(t)
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			b, err := lnd.New(ctx, tt.cfg, log)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				if got := b.Node(); got.Network != "regtest" || got.Pubkey != netw.Kumo.Pubkey() || got.Alias != "kumo" {
					t.Errorf("node %+v, want kumo on regtest", got)
				}
				return
			}
			if err == nil {
				b.Close()
				t.Fatalf("started; want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func withInstance(tag string) lnd.Config {
	c := kumoConfig(netw.Kumo.RPCAddr)
	c.Instance = tag
	return c
}

func payerBalance(t *testing.T, ctx context.Context) int64 {
	t.Helper()
	bal, err := netw.PayerBalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return bal
}

func create(t *testing.T, ctx context.Context, b *running, expiry time.Duration) bridge.Invoice {
	t.Helper()
	inv, err := b.CreateInvoice(ctx, bridge.InvoiceRequest{AmountSat: price, Memo: "kumo room", Expiry: expiry})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// wantFailed waits for the payer's payment to end and checks it did not go through.
func wantFailed(t *testing.T, ctx context.Context, p *lndtest.Payment) {
	t.Helper()
	res, err := p.Wait(ctx)
	if err != nil {
		// lnd refusing to even try (an expired invoice) is a failure too.
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		return
	}
	if res.Status != lnrpc.Payment_FAILED {
		t.Fatalf("payment %s, want FAILED", res.Status)
	}
}

func wantSucceeded(t *testing.T, ctx context.Context, p *lndtest.Payment) {
	t.Helper()
	res, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("payment %s (%s), want SUCCEEDED", res.Status, res.FailureReason)
	}
}

func wantState(t *testing.T, ctx context.Context, id string, state lnrpc.Invoice_InvoiceState) {
	t.Helper()
	if err := netw.WaitInvoiceState(ctx, id, state, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

func stillInFlight(t *testing.T, p *lndtest.Payment) {
	t.Helper()
	select {
	case <-p.Done():
		res, err := p.Wait(context.Background())
		t.Fatalf("the payment ended before kumo settled or cancelled it: %v %v", res.GetStatus(), err)
	default:
	}
}

// Paid and accepted, then settled: the payer's money moves only at Settle, exactly the price.
func TestSettleAfterAccepted(t *testing.T) {
	ctx := testCtx(t)
	b := startBackend(t, netw.Kumo.RPCAddr)
	before := payerBalance(t, ctx)
	start := time.Now()
	inv := create(t, ctx, b, 10*time.Minute)
	if inv.URI != "lightning:"+inv.BOLT11 || !strings.HasPrefix(inv.BOLT11, "lnbcrt") || inv.AmountSat != price || len(inv.ID) != 64 {
		t.Fatalf("invoice %+v", inv)
	}
	if inv.ExpiresAt.Before(start.Add(10*time.Minute)) || inv.ExpiresAt.After(time.Now().Add(10*time.Minute+time.Second)) {
		t.Errorf("expires at %s, want 10 minutes from now", inv.ExpiresAt)
	}
	if !bytes.HasPrefix(inv.QR, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("QR is not a PNG")
	}
	wantState(t, ctx, inv.ID, lnrpc.Invoice_OPEN)

	pay := netw.Pay(ctx, inv.BOLT11)
	b.rec.Wait(t, inv.ID, bridge.PaymentAccepted, 30*time.Second)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_ACCEPTED)
	stillInFlight(t, pay)
	for range 2 { // the second Settle is a no-op
		if err := b.Settle(ctx, inv.ID); err != nil {
			t.Fatal(err)
		}
	}
	wantSucceeded(t, ctx, pay)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_SETTLED)
	if err := netw.WaitPayerBalance(ctx, before-price, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := b.rec.Count(inv.ID, bridge.PaymentAccepted); n != 1 {
		t.Errorf("accepted reported %d times", n)
	}
	if n := b.rec.Count(inv.ID, bridge.PaymentCanceled); n != 0 {
		t.Errorf("a settled invoice was reported cancelled")
	}
}

// Paid and accepted, then cancelled (the room could not be made): the payment fails, money intact.
func TestCancelAfterAccepted(t *testing.T) {
	ctx := testCtx(t)
	b := startBackend(t, netw.Kumo.RPCAddr)
	before := payerBalance(t, ctx)
	inv := create(t, ctx, b, 10*time.Minute)
	pay := netw.Pay(ctx, inv.BOLT11)
	b.rec.Wait(t, inv.ID, bridge.PaymentAccepted, 30*time.Second)
	stillInFlight(t, pay)
	for range 2 { // the second Cancel is a no-op
		if err := b.Cancel(ctx, inv.ID); err != nil {
			t.Fatal(err)
		}
	}
	wantFailed(t, ctx, pay)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_CANCELED)
	if err := netw.WaitPayerBalance(ctx, before, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Settle(ctx, inv.ID); err == nil {
		t.Error("a cancelled invoice settled")
	}
}

// kumo stops after the payment is accepted and a new kumo starts: the new one does not know the
// preimage, so it cancels the invoice at start and the payer keeps their money. An unpaid invoice of
// the old run is made unpayable too.
func TestRestartCancelsLeftovers(t *testing.T) {
	ctx := testCtx(t)
	old := startBackend(t, netw.Kumo.RPCAddr)
	before := payerBalance(t, ctx)
	paid := create(t, ctx, old, 10*time.Minute)
	unpaid := create(t, ctx, old, 10*time.Minute)
	pay := netw.Pay(ctx, paid.BOLT11)
	old.rec.Wait(t, paid.ID, bridge.PaymentAccepted, 30*time.Second)
	old.stop()

	wantState(t, ctx, paid.ID, lnrpc.Invoice_ACCEPTED)
	stillInFlight(t, pay)
	fresh := startBackend(t, netw.Kumo.RPCAddr)
	wantState(t, ctx, paid.ID, lnrpc.Invoice_CANCELED)
	wantState(t, ctx, unpaid.ID, lnrpc.Invoice_CANCELED)
	wantFailed(t, ctx, pay)
	if err := netw.WaitPayerBalance(ctx, before, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	wantFailed(t, ctx, netw.Pay(ctx, unpaid.BOLT11))
	if err := fresh.Settle(ctx, paid.ID); !errors.Is(err, lnd.ErrUnknownInvoice) {
		t.Errorf("settling the old run's invoice: %v, want ErrUnknownInvoice", err)
	}
	// The new run's own invoices are not touched by the clean-up.
	mine := create(t, ctx, fresh, 10*time.Minute)
	wantState(t, ctx, mine.ID, lnrpc.Invoice_OPEN)
	if evs := fresh.rec.All(); len(evs) != 0 {
		t.Errorf("the new run reported %v about invoices it never made", evs)
	}
	if err := fresh.Cancel(ctx, mine.ID); err != nil {
		t.Fatal(err)
	}
}

// An invoice nobody pays in time is cancelled by lnd, reported once as cancelled, and can no longer
// be paid or settled.
func TestExpiry(t *testing.T) {
	ctx := testCtx(t)
	b := startBackend(t, netw.Kumo.RPCAddr)
	before := payerBalance(t, ctx)
	inv := create(t, ctx, b, 2*time.Second)
	b.rec.Wait(t, inv.ID, bridge.PaymentCanceled, 30*time.Second)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_CANCELED)
	wantFailed(t, ctx, netw.Pay(ctx, inv.BOLT11))
	if err := b.Settle(ctx, inv.ID); err == nil {
		t.Error("an expired invoice settled")
	}
	if err := netw.WaitPayerBalance(ctx, before, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := b.rec.Count(inv.ID, bridge.PaymentCanceled); n != 1 {
		t.Errorf("cancelled reported %d times", n)
	}
	if n := b.rec.Count(inv.ID, bridge.PaymentAccepted); n != 0 {
		t.Errorf("an expired invoice was reported accepted")
	}
}

// kumo's lnd restarts while an invoice is open and is paid while kumo's connection is down: once the
// connection is back, the payment is reported, once. While down, new invoices are refused as
// "payments unavailable".
func TestPaidWhileStreamDown(t *testing.T) {
	ctx := testCtx(t)
	proxy, err := lndtest.NewProxy(netw.Kumo.RPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	b := startBackend(t, proxy.Addr())
	inv := create(t, ctx, b, 10*time.Minute)

	proxy.SetDown(true)
	if err := netw.RestartKumo(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = b.CreateInvoice(cctx, bridge.InvoiceRequest{AmountSat: price, Expiry: time.Minute})
	cancel()
	if !errors.Is(err, bridge.ErrPaymentsUnavailable) {
		t.Errorf("CreateInvoice with lnd unreachable: %v, want ErrPaymentsUnavailable", err)
	}
	pay := netw.Pay(ctx, inv.BOLT11)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_ACCEPTED)
	if n := b.rec.Count(inv.ID, bridge.PaymentAccepted); n != 0 {
		t.Fatalf("accepted reported through a cut connection")
	}

	proxy.SetDown(false)
	b.rec.Wait(t, inv.ID, bridge.PaymentAccepted, 30*time.Second)
	if err := b.Settle(ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	wantSucceeded(t, ctx, pay)
	wantState(t, ctx, inv.ID, lnrpc.Invoice_SETTLED)
	if n := b.rec.Count(inv.ID, bridge.PaymentAccepted); n != 1 {
		t.Errorf("accepted reported %d times", n)
	}
}

// The lncli line the README quotes bakes a macaroon kumo runs with.
func TestBakeMacaroonCommand(t *testing.T) {
	ctx := testCtx(t)
	args := strings.Fields(lnd.BakeMacaroonCommand)
	if args[0] != "lncli" || !slices.Equal(args[len(args)-len(lnd.Permissions):], lnd.Permissions) {
		t.Fatalf("%q does not bake exactly %v", lnd.BakeMacaroonCommand, lnd.Permissions)
	}
	dir := t.TempDir()
	global := []string{"--rpcserver=" + netw.Kumo.RPCAddr, "--tlscertpath=" + netw.Kumo.TLSCertPath(),
		"--macaroonpath=" + netw.Kumo.AdminMacaroonPath(), "--network=regtest"}
	cmd := exec.CommandContext(ctx, netw.Bins.Lncli, append(global, args[1:]...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", lnd.BakeMacaroonCommand, err, out)
	}
	log, _ := testLog(t)
	b, err := lnd.New(ctx, lnd.Config{Address: netw.Kumo.RPCAddr, TLSCert: netw.Kumo.TLSCertPath(), Macaroon: filepath.Join(dir, "kumo.macaroon"), Instance: instance}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inv, err := b.CreateInvoice(ctx, bridge.InvoiceRequest{AmountSat: price, Expiry: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Cancel(ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
}

// Validate names exactly the keys that are missing, each with what to put there.
func TestValidateNamesOnlyWhatIsMissing(t *testing.T) {
	err := lnd.Config{TLSCert: "/x", Macaroon: "/y", Instance: "shop"}.Validate()
	if want := "lightning.lnd.address is empty: set it to host:port of lnd's gRPC, e.g. 127.0.0.1:10009"; err == nil || err.Error() != want {
		t.Fatalf("Validate = %v, want %q", err, want)
	}
	if err := (lnd.Config{Address: "h:1", TLSCert: "/x", Macaroon: "/y", Instance: "shop"}).Validate(); err != nil {
		t.Fatalf("a full config: %v", err)
	}
}
