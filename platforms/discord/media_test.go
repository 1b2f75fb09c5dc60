package discord

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	exif "github.com/dsoprea/go-exif/v3"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// TestCoreRelaysMedia: Discord attachments reach the other Discord member as uploads (a JPEG's
// metadata stripped, the name neutral, the caption under the pseudonym) and a platform without
// media as a notice; a file over Discord's 10 MiB is refused to its sender only.
func TestCoreRelaysMedia(t *testing.T) {
	c := startCore(t, discordtest.Options{})
	alice, bob := c.fake.AddUser("alice"), c.fake.AddUser("bob")
	pw := c.openRoom(t, alice)
	n := c.dmCount(bob)
	c.fake.SendDM(bob.ID, "/join "+pw)
	c.dmWith(t, bob, n, "You joined the room")
	olly := c.other.User("olly")
	c.other.Say(t, olly, pw)
	c.other.WaitText(t, olly.Chat, "You joined the room")
	_, me, err := c.b.Store().RoomOf(bridge.Addr{Platform: "discord", User: alice.ID}.Key())
	if err != nil {
		t.Fatal(err)
	}

	photo := bridgetest.JPEGWithMetadata(t)
	stripped, _, err := bridge.StripMetadata(photo)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file     discordtest.Attachment
		flags    int
		caption  string
		want     []byte
		wantName string
		noun     string
	}{
		{discordtest.Attachment{Filename: "IMG_JohnSmith.jpg", ContentType: "image/jpeg", Data: photo}, 0, "my garden", stripped, "photo.jpg", "a photo"},
		{discordtest.Attachment{Filename: "John's notes.txt", ContentType: "text/plain; charset=utf-8", Data: []byte("notes")}, 0, "", []byte("notes"), "file.txt", "a file"},
		{discordtest.Attachment{Filename: "voice-message.ogg", ContentType: "audio/ogg", Data: []byte("OggS voice")}, discordtest.FlagVoiceMessage, "", []byte("OggS voice"), "voice.ogg", "a voice note"},
	}
	for _, tc := range tests {
		t.Run(tc.wantName, func(t *testing.T) {
			n := c.dmCount(bob)
			c.fake.SendDMFiles(alice.ID, tc.caption, tc.flags, tc.file)
			got := c.dmWith(t, bob, n, me.Nick)
			if len(got.Attachments) != 1 {
				t.Fatalf("bob got %+v, want one file", got)
			}
			if a := got.Attachments[0]; a.Filename != tc.wantName || !bytes.Equal(a.Data, tc.want) {
				t.Errorf("bob got %q (%d bytes), want %q (%d bytes)", a.Filename, len(a.Data), tc.wantName, len(tc.want))
			}
			if _, err := exif.SearchAndExtractExif(got.Attachments[0].Data); !errors.Is(err, exif.ErrNoExif) {
				t.Error("bob's file has EXIF")
			}
			if tc.caption != "" && !strings.Contains(got.Content, tc.caption) {
				t.Errorf("bob's message %q lacks the caption", got.Content)
			}
			c.other.WaitText(t, olly.Chat, "📎 "+me.Nick+" sent "+tc.noun+", which other can't show here.")
		})
	}

	t.Run("too big", func(t *testing.T) {
		na, nb := c.dmCount(alice), c.dmCount(bob)
		downloads := c.fake.Downloads()
		c.fake.SendDMFiles(alice.ID, "huge", 0, discordtest.Attachment{Filename: "big.bin", Data: make([]byte, discordtest.MaxFile+1)})
		c.dmWith(t, alice, na, "is too big to relay: the limit is 10.0 MB. Nobody got it.")
		c.fake.SendDM(alice.ID, "after it")
		c.dmWith(t, bob, nb, "after it")
		for _, m := range c.fake.Messages(c.fake.DMChannel(bob.ID))[nb:] {
			if len(m.Attachments) > 0 || strings.Contains(m.Content, "huge") {
				t.Errorf("bob got %+v", m)
			}
		}
		if d := c.fake.Downloads(); d != downloads {
			t.Errorf("a file known to be too big was downloaded (%d times)", d-downloads)
		}
	})

	t.Run("Discord refuses over 10 MiB", func(t *testing.T) {
		to := bridge.Addr{Platform: "discord", User: bob.ID, Chat: c.fake.DMChannel(bob.ID)}
		_, err := c.a.SendMedia(context.Background(), to, bridge.Media{Kind: bridge.MediaFile, Name: "big.bin", Data: make([]byte, discordtest.MaxFile+1)},
			bridge.Message{Kind: bridge.KindRelay, From: "x"})
		if !errors.Is(err, bridge.ErrTooBig) || !errors.Is(err, bridge.ErrRejected) {
			t.Errorf("err = %v, want ErrTooBig and ErrRejected", err)
		}
	})
}
