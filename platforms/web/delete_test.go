package web

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

// The page's own lines carry the page's id to the bridge, and DeleteMessages tells the page what to
// remove: kumo's messages by seq, the visitor's by that id. A page that reconnects is not sent a
// deleted message again.
func TestDeleteMessages(t *testing.T) {
	h := start(t, Config{})
	c := h.dial(t, "", 0)
	ctx := context.Background()
	c.send(inbound{Type: "text", Text: "mine", ID: "7"})
	in := next(t, h.rec)
	if in.ID != "o7" {
		t.Fatalf("own line's id %q, want o7", in.ID)
	}
	for _, bad := range []string{"x", "1234567890123", "-1"} {
		c.send(inbound{Type: "text", Text: "mine", ID: bad})
		if in := next(t, h.rec); in.ID != "" {
			t.Fatalf("page id %q became %q", bad, in.ID)
		}
	}
	to := in.From
	var ids []bridge.MessageID
	for _, s := range []string{"one", "two", "three"} {
		id, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, From: "A", Text: s})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if ev := c.next(); ev.Text != s {
			t.Fatalf("got %+v", ev)
		}
	}
	c.conn.Close() // away: the deletion waits for the page too
	if err := h.p.DeleteMessages(ctx, to, []bridge.MessageID{ids[0], ids[2], in.ID}); err != nil {
		t.Fatal(err)
	}
	r := h.dial(t, c.hello.Token, 0) // a page that lost everything asks from the start
	var got []event
	for range 2 {
		got = append(got, r.next())
	}
	if got[0].Text != "two" || got[1].Type != "delete" || !slices.Equal(got[1].IDs, []string{string(ids[0]), string(ids[2]), "o7"}) {
		t.Fatalf("after the deletion a reconnecting page gets %+v", got)
	}
	h.p.mu.Lock()
	delete(h.p.sessions, to.User)
	h.p.mu.Unlock()
	if err := h.p.DeleteMessages(ctx, to, ids[1:2]); !errors.Is(err, bridge.ErrRecipientGone) {
		t.Fatalf("deleting in a closed page: %v", err)
	}
}

// Deleting messages the page was already sent reaches a connected page at once.
func TestDeleteWhileConnected(t *testing.T) {
	h := start(t, Config{})
	c := h.dial(t, "", 0)
	to := c.addr(h.rec)
	ctx := context.Background()
	var ids []bridge.MessageID
	for range 3 {
		id, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindNotice, Text: "n"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		c.next()
	}
	if err := h.p.DeleteMessages(ctx, to, ids); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); ev.Type != "delete" || len(ev.IDs) != 3 {
		t.Fatalf("got %+v, want the deletion of all three", ev)
	}
}
