package matrix

import (
	"context"
	"reflect"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
)

// TestConversationInEncryptedDM: on a real Dendrite, in an encrypted DM, a person's m.replace,
// m.in_reply_to, m.reaction and redactions (of the reaction, then of the message) reach the bridge
// as an edit, a reply, a reaction, its removal and an unsend; the bot's replies carry m.in_reply_to
// and its edits are m.replace events with m.new_content, encrypted like the room.
func TestConversationInEncryptedDM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rec, b, alice, room, me := aliceDM(t, ctx, true)
	origin := "hs:" + alice.ID.Homeserver()

	orig, err := alice.Send(ctx, room, "hello matrix")
	if err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, ctx, 1)
	edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "hello matrix, edited"}
	edit.SetEdit(orig)
	editResp, err := alice.Client.SendMessageEvent(ctx, room, event.EventMessage, edit)
	if err != nil {
		t.Fatal(err)
	}
	reply := &event.MessageEventContent{MsgType: event.MsgText, Body: "a reply",
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: orig}}}
	replyResp, err := alice.Client.SendMessageEvent(ctx, room, event.EventMessage, reply)
	if err != nil {
		t.Fatal(err)
	}
	react, err := alice.Client.SendMessageEvent(ctx, room, event.EventReaction, &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: orig, Key: "👍"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, eid := range []id.EventID{react.EventID, orig} {
		if _, err := alice.Client.RedactEvent(ctx, room, eid); err != nil {
			t.Fatal(err)
		}
	}
	wants := []bridge.Inbound{
		{From: me, Action: bridge.ActionEdit, Target: bridge.MessageID(orig), Text: "hello matrix, edited", ID: bridge.MessageID(editResp.EventID), Origin: origin},
		{From: me, Text: "a reply", ReplyTo: bridge.MessageID(orig), ID: bridge.MessageID(replyResp.EventID), Origin: origin},
		{From: me, Action: bridge.ActionReact, Target: bridge.MessageID(orig), Emoji: "👍", Origin: origin},
		{From: me, Action: bridge.ActionUnreact, Target: bridge.MessageID(orig), Emoji: "👍", Origin: origin},
		{From: me, Action: bridge.ActionUnsend, Target: bridge.MessageID(orig), Origin: origin},
	}
	for i, want := range wants {
		if got := rec.Wait(t, ctx, i+2)[i+1]; !reflect.DeepEqual(got, want) {
			t.Fatalf("inbound #%d = %+v, want %+v", i+1, got, want)
		}
	}

	sent, err := b.a.SendText(ctx, me, bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "re: hello", ReplyTo: bridge.MessageID(replyResp.EventID), Quote: "↩ x: y"})
	if err != nil {
		t.Fatal(err)
	}
	got := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return c.Body == "Blue Fox: re: hello" })
	if got.RelatesTo.GetReplyTo() != replyResp.EventID {
		t.Fatalf("the bot's reply relates to %+v, want a reply to %s", got.RelatesTo, replyResp.EventID)
	}
	if err := b.a.EditText(ctx, me, sent, bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: "re: hello, fixed"}); err != nil {
		t.Fatal(err)
	}
	ed := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return c.NewContent != nil })
	if ed.RelatesTo == nil || ed.RelatesTo.Type != event.RelReplace || ed.RelatesTo.EventID != id.EventID(sent) || ed.NewContent.Body != "Blue Fox: re: hello, fixed" {
		t.Fatalf("the bot's edit is %+v", ed)
	}
	// Reactions on alice's reply: an m.reaction each, and a redaction of the one taken back.
	if err := b.a.SetReactions(ctx, me, bridge.MessageID(replyResp.EventID), []string{"👍", "🔥"}); err != nil {
		t.Fatal(err)
	}
	var thumbs id.EventID
	for _, key := range []string{"👍", "🔥"} {
		e, err := alice.WaitEvent(ctx, func(e *event.Event) bool {
			if e.RoomID != room || e.Sender != b.id || e.Type != event.EventReaction {
				return false
			}
			rel := e.Content.AsReaction().RelatesTo
			return rel.EventID == replyResp.EventID && rel.Key == key
		})
		if err != nil {
			t.Fatalf("no %s reaction from the bot: %v", key, err)
		}
		if key == "👍" {
			thumbs = e.ID
		}
	}
	if err := b.a.SetReactions(ctx, me, bridge.MessageID(replyResp.EventID), []string{"🔥"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.WaitRedacted(ctx, room, []id.EventID{thumbs}); err != nil {
		t.Fatal(err)
	}
	if n := alice.DecryptFailures(); n != 0 {
		t.Errorf("alice could not decrypt %d events", n)
	}
}
