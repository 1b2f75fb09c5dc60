package matrix

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
)

// recordingPay is the development backend, telling the test which invoices it made.
type recordingPay struct {
	*lightning.Dev
	invoices chan bridge.Invoice
}

func (p recordingPay) CreateInvoice(ctx context.Context, req bridge.InvoiceRequest) (bridge.Invoice, error) {
	inv, err := p.Dev.CreateInvoice(ctx, req)
	if err == nil {
		p.invoices <- inv
	}
	return inv, err
}

// TestThroughCore runs the whole product path against the real homeserver: an encrypted DM buys a
// room (invoice image + BOLT11, paid with the dev backend), a second encrypted-DM user and an
// unencrypted-DM user join with the password, messages relay both ways and decrypt, markup and
// @room arrive inert, leaving the DM removes the member (the others are told), and the room's end
// is announced.
func TestThroughCore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pay := recordingPay{Dev: lightning.NewDev(log), invoices: make(chan bridge.Invoice, 4)}
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 1000
	// Long enough for the steps below even on a loaded machine, short enough to wait for the end.
	cfg.Rooms.Lifetime = 20 * time.Second

	// The product path: the bridge runs the adapter.
	b := newBot(t, ctx, hs.URL)
	br, err := bridge.New(cfg, pay, log, b.a)
	if err != nil {
		t.Fatal(err)
	}
	// Stopped at cleanup, with a deadline.
	run := bridgetest.Background(t, "bridge", br.Run)
	b.waitReady(t, ctx, run)

	alice := login(t, ctx, "alice")
	bob := login(t, ctx, "bob")
	carol := login(t, ctx, "carol")
	aliceDM := openDM(t, ctx, alice, b, true)
	bobDM := openDM(t, ctx, bob, b, true)
	carolDM := openDM(t, ctx, carol, b, false) // an unencrypted DM works too

	// alice buys a room: the QR (decryptable, the invoice's PNG) and the BOLT11 as code.
	if err := alice.SendText(ctx, aliceDM, "!newroom"); err != nil {
		t.Fatal(err)
	}
	var inv bridge.Invoice
	select {
	case inv = <-pay.invoices:
	case <-ctx.Done():
		t.Fatal("no invoice was created")
	}
	img := message(t, ctx, alice, aliceDM, b.id, func(c *event.MessageEventContent) bool { return c.MsgType == event.MsgImage })
	png, err := alice.Download(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(png, inv.QR) || img.File == nil {
		t.Errorf("invoice image: encrypted=%v, same PNG as the invoice's QR=%v", img.File != nil, bytes.Equal(png, inv.QR))
	}
	code := message(t, ctx, alice, aliceDM, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, inv.BOLT11) })
	if !strings.Contains(code.FormattedBody, "<code>"+inv.BOLT11+"</code>") {
		t.Errorf("BOLT11 not shown as code: %q", code.FormattedBody)
	}

	// Paying opens the room; its password comes as code.
	if err := pay.Pay(ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	opened := message(t, ctx, alice, aliceDM, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "room is open") })
	password := opened.Body[strings.LastIndex(opened.Body, "\n")+1:]
	if password == "" || !strings.Contains(opened.FormattedBody, "<code>"+password+"</code>") {
		t.Fatalf("no password in %q", opened.Body)
	}

	// bob sends the bare password, carol uses /join; the others hear of each.
	if err := bob.SendText(ctx, bobDM, password); err != nil {
		t.Fatal(err)
	}
	bobNick := nickFrom(t, message(t, ctx, bob, bobDM, b.id, func(c *event.MessageEventContent) bool { return strings.HasPrefix(c.Body, "You joined the room as ") }).Body)
	message(t, ctx, alice, aliceDM, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, bobNick+" joined") })
	if err := carol.SendText(ctx, carolDM, "/join "+password); err != nil {
		t.Fatal(err)
	}
	carolNick := nickFrom(t, message(t, ctx, carol, carolDM, b.id, func(c *event.MessageEventContent) bool { return strings.HasPrefix(c.Body, "You joined the room as ") }).Body)
	for _, u := range []struct {
		u  *matrixtest.User
		dm id.RoomID
	}{{alice, aliceDM}, {bob, bobDM}} {
		message(t, ctx, u.u, u.dm, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, carolNick+" joined") })
	}

	// alice's words reach bob (encrypted) and carol (plain), inert.
	evil := "hello <b>world</b> @room"
	if err := alice.SendText(ctx, aliceDM, evil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		u  *matrixtest.User
		dm id.RoomID
	}{{bob, bobDM}, {carol, carolDM}} {
		got := message(t, ctx, u.u, u.dm, b.id, func(c *event.MessageEventContent) bool { return strings.HasSuffix(c.Body, evil) })
		if !strings.HasSuffix(got.Body, ": "+evil) || !strings.HasSuffix(got.FormattedBody, "</b>: hello &lt;b&gt;world&lt;/b&gt; @room") {
			t.Errorf("%s got body %q formatted %q", u.u.ID, got.Body, got.FormattedBody)
		}
		if got.Mentions == nil || got.Mentions.Room {
			t.Errorf("%s: relayed @room carries mentions %+v, want an empty m.mentions", u.u.ID, got.Mentions)
		}
	}
	// ...and carol's plain-DM words reach alice, who decrypts them.
	if err := carol.SendText(ctx, carolDM, "hi from a plain DM"); err != nil {
		t.Fatal(err)
	}
	got := message(t, ctx, alice, aliceDM, b.id, func(c *event.MessageEventContent) bool { return strings.HasSuffix(c.Body, "hi from a plain DM") })
	if got.Body != carolNick+": hi from a plain DM" {
		t.Errorf("alice got %q", got.Body)
	}

	// bob leaves his DM: he leaves the room and the others are told.
	if _, err := bob.Client.LeaveRoom(ctx, bobDM); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		u  *matrixtest.User
		dm id.RoomID
	}{{alice, aliceDM}, {carol, carolDM}} {
		message(t, ctx, u.u, u.dm, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, bobNick+" left") })
	}

	// The room self-destructs at the end of its lifetime, and says so.
	for _, u := range []struct {
		u  *matrixtest.User
		dm id.RoomID
	}{{alice, aliceDM}, {carol, carolDM}} {
		end := message(t, ctx, u.u, u.dm, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "self-destructed") })
		if end.MsgType != event.MsgNotice || !strings.HasPrefix(end.Body, bridge.NoticeMark) {
			t.Errorf("end notice %q %q", end.MsgType, end.Body)
		}
	}
	for _, u := range []*matrixtest.User{alice, bob, carol} {
		if n := u.DecryptFailures(); n != 0 {
			t.Errorf("%s could not decrypt %d events", u.ID, n)
		}
	}
}

// nickFrom reads the pseudonym out of "You joined the room as NICK. ...".
func nickFrom(t *testing.T, body string) string {
	t.Helper()
	rest := strings.TrimPrefix(body, "You joined the room as ")
	nick, _, ok := strings.Cut(rest, ". ")
	if !ok || nick == "" {
		t.Fatalf("no pseudonym in %q", body)
	}
	return nick
}
