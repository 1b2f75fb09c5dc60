package lnd_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning/lnd"
)

// cleanedUp waits until the backend's start-up clean-up has gone through every pending invoice
// (it says so in its log), so that what it left alone was left alone for good, not just not yet.
func cleanedUp(t *testing.T, r *running) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(r.logs.String(), "lnd: start-up clean-up done") {
		if time.Now().After(deadline) {
			t.Fatalf("the start-up clean-up did not finish within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two kumo deployments on one lnd node, each with a payment held: restarting one cancels its own
// held payment (the payer is refunded) and leaves the other's, which that one still settles.
func TestInstancesShareANode(t *testing.T) {
	ctx := testCtx(t)
	before := payerBalance(t, ctx)
	alpha := runBackend(t, withInstance("alpha"))
	beta := runBackend(t, withInstance("beta"))
	invA := create(t, ctx, alpha, 10*time.Minute)
	invB := create(t, ctx, beta, 10*time.Minute)
	for _, c := range []struct {
		id, memo string
	}{{invA.ID, "kumo room · alpha"}, {invB.ID, "kumo room · beta"}} {
		hash, _ := hex.DecodeString(c.id)
		got, err := netw.Kumo.Lightning().LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: hash})
		if err != nil {
			t.Fatal(err)
		}
		// What the payer's wallet shows: kumo and the tag, nothing about the room.
		if got.Memo != c.memo {
			t.Errorf("memo %q, want %q", got.Memo, c.memo)
		}
	}
	payA, payB := netw.Pay(ctx, invA.BOLT11), netw.Pay(ctx, invB.BOLT11)
	alpha.rec.Wait(t, invA.ID, bridge.PaymentAccepted, 30*time.Second)
	beta.rec.Wait(t, invB.ID, bridge.PaymentAccepted, 30*time.Second)

	alpha.stop()
	restarted := runBackend(t, withInstance("alpha"))
	cleanedUp(t, restarted)
	wantState(t, ctx, invA.ID, lnrpc.Invoice_CANCELED)
	wantFailed(t, ctx, payA)
	// The clean-up is over, so beta's invoice is still held now only if it was never touched.
	if st, err := netw.InvoiceState(ctx, invB.ID); err != nil || st != lnrpc.Invoice_ACCEPTED {
		t.Fatalf("the other deployment's held invoice is %v (%v), want ACCEPTED", st, err)
	}
	stillInFlight(t, payB)
	if !strings.Contains(restarted.logs.String(), "beta:1") {
		t.Errorf("the restarted kumo did not report the other deployment's pending invoice:\n%s", restarted.logs.String())
	}

	if err := beta.Settle(ctx, invB.ID); err != nil {
		t.Fatal(err)
	}
	wantSucceeded(t, ctx, payB)
	wantState(t, ctx, invB.ID, lnrpc.Invoice_SETTLED)
	if n := beta.rec.Count(invB.ID, bridge.PaymentCanceled); n != 0 {
		t.Errorf("beta was told its invoice was cancelled")
	}
	if evs := restarted.rec.All(); len(evs) != 0 {
		t.Errorf("the restarted alpha reported %v about invoices it never made", evs)
	}
	// One payment taken, one refunded.
	if err := netw.WaitPayerBalance(ctx, before-price, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// What a restarted kumo takes for its own leftovers, by memo: its own tag and the bare memo of kumo
// versions from before tags (which ran alone on their node); nothing else.
func TestLeftoverMemos(t *testing.T) {
	ctx := testCtx(t)
	tests := []struct {
		memo       string
		wantCancel bool
	}{
		{lnd.Memo("gamma"), true},
		{"kumo room", true}, // legacy
		{lnd.Memo("delta"), false},
		{lnd.Memo("gammaray"), false},
		{lnd.Memo("gamma") + " ", false},
		{"kumo room ·", false},
		{"coffee", false},
		{"", false},
	}
	hashes := make([]string, len(tests))
	for i, tt := range tests {
		preimage := make([]byte, 32)
		_, _ = rand.Read(preimage)
		hash := sha256.Sum256(preimage)
		hashes[i] = hex.EncodeToString(hash[:])
		// Added with the admin macaroon, as another kumo (or another program) on the node would.
		if _, err := netw.Kumo.Invoices().AddHoldInvoice(ctx, &invoicesrpc.AddHoldInvoiceRequest{
			Memo: tt.memo, Hash: hash[:], Value: price, Expiry: 600,
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = netw.Kumo.Invoices().CancelInvoice(cctx, &invoicesrpc.CancelInvoiceMsg{PaymentHash: hash[:]})
		})
	}
	b := runBackend(t, withInstance("gamma"))
	cleanedUp(t, b)
	for i, tt := range tests {
		st, err := netw.InvoiceState(ctx, hashes[i])
		if err != nil {
			t.Fatal(err)
		}
		want := lnrpc.Invoice_OPEN
		if tt.wantCancel {
			want = lnrpc.Invoice_CANCELED
		}
		if st != want {
			t.Errorf("memo %q: invoice %s after the restart, want %s", tt.memo, st, want)
		}
	}
}
