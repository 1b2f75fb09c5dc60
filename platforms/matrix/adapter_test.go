package matrix

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
)

// message waits until u has a message from sender in room whose body passes match.
func message(t testing.TB, ctx context.Context, u interface {
	WaitEvent(context.Context, func(*event.Event) bool) (*event.Event, error)
}, room id.RoomID, sender id.UserID, match func(*event.MessageEventContent) bool) *event.MessageEventContent {
	t.Helper()
	evt, err := u.WaitEvent(ctx, func(e *event.Event) bool {
		return e.RoomID == room && e.Sender == sender && e.Type == event.EventMessage && match(e.Content.AsMessage())
	})
	if err != nil {
		t.Fatal(err)
	}
	return evt.Content.AsMessage()
}

// TestDM covers one person's private chat with the bot, encrypted and not: commands in, replies,
// invoice (image + code) and relayed text out, with nothing a member types becoming markup.
func TestDM(t *testing.T) {
	for _, tc := range []struct {
		name      string
		encrypted bool
	}{{"encrypted", true}, {"unencrypted", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			rec, b, alice, room, me := aliceDM(t, ctx, tc.encrypted)

			// Commands arrive as text, in order; "/" commands too when the client sends them.
			// Each carries the event id of alice's message.
			for i, text := range []string{"!newroom", "/help", "hello <b>there</b>"} {
				eid, err := alice.Send(ctx, room, text)
				if err != nil {
					t.Fatal(err)
				}
				// Origin groups senders by homeserver, so the core can count what many accounts on one do.
				want := bridge.Inbound{From: me, Text: text, ID: bridge.MessageID(eid), Origin: "hs:" + alice.ID.Homeserver()}
				if got := rec.Wait(t, ctx, i+1)[i]; !reflect.DeepEqual(got, want) {
					t.Fatalf("inbound #%d = %+v, want %+v", i, got, want)
				}
			}

			// The invoice: the QR as an m.image (encrypted file in an encrypted room), then the BOLT11.
			qr, err := lightning.QRCode("LIGHTNING:LNBCRT10U1TEST")
			if err != nil {
				t.Fatal(err)
			}
			inv := bridge.Message{Kind: bridge.KindInvoice, Text: "Pay 1,000 sat <now>", Code: "lnbcrt10u1test"}
			if _, err := b.a.SendImage(ctx, me, bridge.Image{Name: "invoice.png", PNG: qr}, inv); err != nil {
				t.Fatal(err)
			}
			img := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return c.MsgType == event.MsgImage })
			if tc.encrypted != (img.File != nil) || tc.encrypted == (img.URL != "") {
				t.Errorf("image in an encrypted=%v room: file=%v url=%q", tc.encrypted, img.File != nil, img.URL)
			}
			got, err := alice.Download(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, qr) {
				t.Errorf("downloaded image differs from the QR sent (%d vs %d bytes)", len(got), len(qr))
			}
			code := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "lnbcrt10u1test") })
			if want := "Pay 1,000 sat <now>\nlnbcrt10u1test"; code.Body != want {
				t.Errorf("invoice text body = %q, want %q", code.Body, want)
			}
			if want := "Pay 1,000 sat &lt;now&gt;<br><code>lnbcrt10u1test</code>"; code.FormattedBody != want {
				t.Errorf("invoice formatted body = %q, want %q", code.FormattedBody, want)
			}

			// Relayed text: bold pseudonym, escaped words, no mentions at all.
			evil := `<b>bold</b> @room <a href="https://matrix.to/#/@x:localhost">pill</a> & "q"` + "\nline2"
			if _, err := b.a.SendText(ctx, me, bridge.Message{Kind: bridge.KindRelay, From: "Blue Fox", Text: evil}); err != nil {
				t.Fatal(err)
			}
			relay := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return strings.HasPrefix(c.Body, "Blue Fox:") })
			if relay.Body != "Blue Fox:\n> "+strings.ReplaceAll(evil, "\n", "\n> ") {
				t.Errorf("relay body = %q", relay.Body)
			}
			wantHTML := `<b>Blue Fox</b>:<blockquote>&lt;b&gt;bold&lt;/b&gt; @room &lt;a href=&#34;https://matrix.to/#/@x:localhost&#34;&gt;pill&lt;/a&gt; &amp; &#34;q&#34;<br>line2</blockquote>`
			if relay.FormattedBody != wantHTML {
				t.Errorf("relay formatted body = %q\nwant %q", relay.FormattedBody, wantHTML)
			}
			if relay.MsgType != event.MsgText || relay.Mentions == nil || relay.Mentions.Room || len(relay.Mentions.UserIDs) != 0 {
				t.Errorf("relay msgtype %q mentions %+v: want m.text with an empty m.mentions", relay.MsgType, relay.Mentions)
			}

			// A member's line that reads like a notice stays in their quoted m.text, never italic.
			forged := "hi\n🔔 Proud Wolf left. 1 member."
			if _, err := b.a.SendText(ctx, me, bridge.Message{Kind: bridge.KindRelay, From: "Calm Otter", Text: forged}); err != nil {
				t.Fatal(err)
			}
			fake := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return strings.HasPrefix(c.Body, "Calm Otter:") })
			if want := "<b>Calm Otter</b>:<blockquote>hi<br>🔔 Proud Wolf left. 1 member.</blockquote>"; fake.FormattedBody != want || fake.MsgType != event.MsgText {
				t.Errorf("forged notice = %q %q, want m.text %q", fake.MsgType, fake.FormattedBody, want)
			}
			if want := "Calm Otter:\n> hi\n> 🔔 Proud Wolf left. 1 member."; fake.Body != want {
				t.Errorf("forged notice plain body = %q, want %q", fake.Body, want)
			}

			// Notices look unlike relayed words.
			if _, err := b.a.SendText(ctx, me, bridge.Message{Kind: bridge.KindNotice, Text: "Red Owl joined."}); err != nil {
				t.Fatal(err)
			}
			notice := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "Red Owl joined.") })
			if notice.MsgType != event.MsgNotice || notice.Body != bridge.NoticeMark+"Red Owl joined." ||
				notice.FormattedBody != "<i>"+bridge.NoticeMark+"Red Owl joined.</i>" {
				t.Errorf("notice = %q %q %q", notice.MsgType, notice.Body, notice.FormattedBody)
			}

			// A file is an attachment (media_test.go fetches one); a location is NonText.
			file, err := alice.Client.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
				MsgType: event.MsgFile, Body: "a.txt", URL: "mxc://localhost/none",
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Wait(t, ctx, 4)[3]; got.ID != bridge.MessageID(file.EventID) || len(got.Attachments) != 1 ||
				got.Attachments[0].Kind != bridge.MediaFile || got.Attachments[0].Name != "a.txt" {
				t.Errorf("file inbound = %+v, want one file attachment", got)
			}
			loc, err := alice.Client.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
				MsgType: event.MsgLocation, Body: "here", GeoURI: "geo:51.5,0.1",
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Wait(t, ctx, 5)[4]; !reflect.DeepEqual(got, bridge.Inbound{From: me, NonText: true, ID: bridge.MessageID(loc.EventID), Origin: "hs:" + alice.ID.Homeserver()}) {
				t.Errorf("location inbound = %+v, want NonText", got)
			}
			if n := alice.DecryptFailures(); n != 0 {
				t.Errorf("alice could not decrypt %d events", n)
			}
		})
	}
}

// TestLeaveDM: a user who leaves the DM leaves their kumo room ("/leave" on their behalf), and
// nothing can be sent to that DM any more.
func TestLeaveDM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec, b, alice, room, me := aliceDM(t, ctx, true)
	if err := alice.SendText(ctx, room, "bye soon"); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, ctx, 1)
	if _, err := alice.Client.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if got := rec.Wait(t, ctx, 2)[1]; !reflect.DeepEqual(got, bridge.Inbound{From: me, Text: "/leave", Origin: "hs:" + alice.ID.Homeserver()}) {
		t.Fatalf("after leaving: inbound %+v, want /leave", got)
	}
	_, err := b.a.SendText(ctx, me, bridge.Message{Kind: bridge.KindNotice, Text: "You left."})
	if !errors.Is(err, bridge.ErrRecipientGone) {
		t.Fatalf("SendText to a left DM = %v, want ErrRecipientGone", err)
	}
}

// TestGroupRoom: rooms with anyone else in them get one answer, nothing is relayed, and the bot leaves.
func TestGroupRoom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := &bridgetest.Inbox{}
	b := startBot(t, ctx, rec)
	alice := login(t, ctx, "alice")
	bob := login(t, ctx, "bob")
	room, err := alice.CreateDM(ctx, bob.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Client.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := alice.WaitJoined(ctx, room, bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Client.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: b.id}); err != nil {
		t.Fatal(err)
	}
	answer := message(t, ctx, alice, room, b.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "direct") })
	if answer.MsgType != event.MsgNotice {
		t.Errorf("group answer msgtype %q", answer.MsgType)
	}
	if _, err := alice.WaitEvent(ctx, func(e *event.Event) bool {
		return e.RoomID == room && e.Type == event.StateMember && e.GetStateKey() == b.id.String() &&
			e.Content.AsMember().Membership == event.MembershipLeave
	}); err != nil {
		t.Fatal("the bot did not leave the group room:", err)
	}
	if got := rec.All(); len(got) != 0 {
		t.Errorf("group room produced inbound %+v", got)
	}
	if n := len(alice.Messages(room, b.id)); n != 1 {
		t.Errorf("the bot wrote %d messages in the group room, want 1", n)
	}
}
