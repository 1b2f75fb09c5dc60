package lnd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/kumo-chat/kumo/bridge"
)

// extendInvoice has the member send /extend and returns the invoice they are shown.
func (c *core) extendInvoice(t *testing.T, user bridge.Addr) bridge.Invoice {
	t.Helper()
	before := len(c.p.Messages(user.Chat))
	c.p.Say(t, user, "/extend")
	var inv *bridge.Invoice
	c.p.WaitFor(t, user.Chat, 20*time.Second, "an extension invoice", func(ms []bridge.Message) bool {
		for _, m := range ms[before:] {
			if m.Kind == bridge.KindInvoice && m.Invoice != nil && strings.Contains(m.Text, "longer") {
				inv = m.Invoice
				return true
			}
		}
		return false
	})
	return *inv
}

// TestCoreExtendSettlesOnlyOnceApplied: /extend paid on regtest is settled once the room's end has
// moved; an extension that cannot be applied any more (the cap was reached by another one, or the
// room was destroyed) is cancelled, the payment fails and the payer keeps the money.
func TestCoreExtendSettlesOnlyOnceApplied(t *testing.T) {
	ctx := testCtx(t)
	c := startCore(t, netw.Kumo.RPCAddr, func(cfg *bridge.Config) {
		cfg.Rooms.Lifetime = time.Hour
		cfg.Rooms.MaxLifetime = 2 * time.Hour
	})
	alice, bob, dave := c.p.User("alice"), c.p.User("bob"), c.p.User("dave")
	before := payerBalance(t, ctx)

	room := c.newRoom(t, alice, "cobalt-meadow-lantern")
	wantSucceeded(t, ctx, netw.Pay(ctx, room.BOLT11))
	c.p.WaitText(t, alice.Chat, roomOpen)
	c.p.Say(t, bob, "cobalt-meadow-lantern")
	c.p.WaitText(t, bob.Chat, "You joined the room")

	// Two members ask at once; only one more hour fits under the 2h cap.
	first := c.extendInvoice(t, alice)
	second := c.extendInvoice(t, bob)
	if first.AmountSat != price || second.AmountSat != price {
		t.Fatalf("extensions cost %d and %d sat, want the room's %d", first.AmountSat, second.AmountSat, price)
	}
	wantState(t, ctx, first.ID, lnrpc.Invoice_OPEN)
	pay1 := netw.Pay(ctx, first.BOLT11)
	c.p.WaitText(t, bob.Chat, "extended the room by 1h")
	wantSucceeded(t, ctx, pay1)
	wantState(t, ctx, first.ID, lnrpc.Invoice_SETTLED)

	pay2 := netw.Pay(ctx, second.BOLT11)
	c.p.WaitText(t, bob.Chat, "could not be extended: a room lives at most 2h")
	wantFailed(t, ctx, pay2)
	wantState(t, ctx, second.ID, lnrpc.Invoice_CANCELED)

	// A room destroyed while its extension is being paid: cancelled.
	room2 := c.newRoom(t, dave, "saffron-glacier-whistle")
	wantSucceeded(t, ctx, netw.Pay(ctx, room2.BOLT11))
	c.p.WaitText(t, dave.Chat, roomOpen)
	third := c.extendInvoice(t, dave)
	c.p.Say(t, dave, "/destroy")
	c.p.WaitText(t, dave.Chat, "destroyed")
	pay3 := netw.Pay(ctx, third.BOLT11)
	c.p.WaitText(t, dave.Chat, "could not be extended: the room has ended")
	wantFailed(t, ctx, pay3)
	wantState(t, ctx, third.ID, lnrpc.Invoice_CANCELED)

	// Two rooms and one extension, nothing else.
	if err := netw.WaitPayerBalance(ctx, before-3*price, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	c.noSecrets(t, "cobalt-meadow-lantern", "saffron-glacier-whistle")
}
