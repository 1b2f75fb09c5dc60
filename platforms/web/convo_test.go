package web

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

// The page's reply, edit, unsend and react messages reach the bridge as Inbound actions on page
// ids; the bridge's edits and reactions reach the page, and an edit is kept for a page that
// reconnects. Ids that are no page's are refused.
func TestConversationOverTheSocket(t *testing.T) {
	h := start(t, Config{})
	c := h.dial(t, "", 0)
	ctx := context.Background()
	c.send(inbound{Type: "text", Text: "first", ID: "1"})
	to := next(t, h.rec).From

	tests := []struct {
		name string
		send inbound
		want bridge.Inbound
	}{
		{"reply", inbound{Type: "text", Text: "re", ID: "2", ReplyTo: "12"}, bridge.Inbound{Text: "re", ID: "o2", ReplyTo: "12"}},
		{"reply to own line", inbound{Type: "text", Text: "re", ID: "3", ReplyTo: "o1"}, bridge.Inbound{Text: "re", ID: "o3", ReplyTo: "o1"}},
		{"edit", inbound{Type: "edit", Target: "o1", Text: " fixed "}, bridge.Inbound{Action: bridge.ActionEdit, Target: "o1", ID: "o1", Text: "fixed"}},
		{"unsend", inbound{Type: "unsend", Target: "o1"}, bridge.Inbound{Action: bridge.ActionUnsend, Target: "o1", ID: "o1"}},
		{"react", inbound{Type: "react", Target: "12", Emoji: "👍"}, bridge.Inbound{Action: bridge.ActionReact, Target: "12", Emoji: "👍"}},
		{"unreact", inbound{Type: "react", Target: "12", Emoji: "👍", Remove: true}, bridge.Inbound{Action: bridge.ActionUnreact, Target: "12", Emoji: "👍"}},
	}
	for _, tc := range tests {
		c.send(tc.send)
		got := next(t, h.rec)
		got.From, got.Origin = bridge.Addr{}, ""
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: bridge got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "o", "1234567890123", "o-1"} {
		c.send(inbound{Type: "react", Target: bad, Emoji: "👍"})
		if ev := c.next(); ev.Type != "error" {
			t.Fatalf("target %q: got %+v, want an error", bad, ev)
		}
	}

	id, err := h.p.SendText(ctx, to, bridge.Message{Kind: bridge.KindRelay, From: "A", Text: "orig", ReplyTo: "o1", Quote: "↩ B: first"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); ev.ReplyTo != "o1" || ev.Quote != "↩ B: first" {
		t.Fatalf("a reply reached the page as %+v", ev)
	}
	if err := h.p.EditText(ctx, to, id, bridge.Message{Kind: bridge.KindRelay, From: "A", Text: "edited"}); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); ev.Type != "edit" || ev.Target != string(id) || ev.Text != "edited" {
		t.Fatalf("an edit reached the page as %+v", ev)
	}
	if err := h.p.SetReactions(ctx, to, "o1", []string{"👍", "🔥"}); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); ev.Type != "react" || ev.Target != "o1" || !slices.Equal(ev.Reactions, []string{"👍", "🔥"}) {
		t.Fatalf("reactions reached the page as %+v", ev)
	}
	c.conn.Close()
	r := h.dial(t, c.hello.Token, 0) // a page that lost everything gets the edited text
	if ev := r.next(); ev.Type != "msg" || ev.Text != "edited" {
		t.Fatalf("a reconnecting page got %+v, want the edited text", ev)
	}
}
