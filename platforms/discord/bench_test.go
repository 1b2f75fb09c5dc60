package discord

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
)

// unlimited are the fake's options with its rate limits lifted (by default it enforces Discord's:
// 50 requests a second, 5 messages per 5 s into a DM): the media benchmarks measure the transfer,
// not the buckets. The adapter's pacing is lifted with them (unpaced).
func unlimited() discordtest.Options {
	lifted := discordtest.Window{N: math.MaxInt32, Per: time.Second}
	return discordtest.Options{GlobalLimit: lifted, RouteLimit: lifted, DeleteLimit: lifted}
}

// unpaced turns off the adapter's own pacing, global and per DM.
func unpaced() []Option {
	return []Option{WithPacing(rate.Inf, 1), WithDMPacing(rate.Inf, 1)}
}

// benchFile is the file the media benchmarks move: 4 MiB, as Telegram's.
func benchFile() []byte { return bytes.Repeat([]byte("kumo"), 1<<20) }

// filesOf counts the bot's messages in the user's DM carrying one file of size bytes.
func (c *core) filesOf(user discordtest.User, size int) int {
	n := 0
	for _, m := range c.fake.Messages(c.fake.DMChannel(user.ID)) {
		if len(m.Attachments) == 1 && len(m.Attachments[0].Data) == size {
			n++
		}
	}
	return n
}

// BenchmarkMediaUpload sends a 4 MiB file through the adapter to the fake (a multipart upload,
// parsed by the fake), its limits and the adapter's pacing lifted: the adapter's upload throughput.
// The fake keeps every file, so keep -benchtime to a count:
//
//	go test -tags goolm -run '^$' -bench MediaUpload -benchtime 20x ./platforms/discord/
func BenchmarkMediaUpload(b *testing.B) {
	c := startCore(b, unlimited(), unpaced()...)
	alice := c.fake.AddUser("alice")
	to := bridge.Addr{Platform: "discord", User: alice.ID, Chat: c.fake.DMChannel(alice.ID)}
	data := benchFile()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := c.a.SendMedia(context.Background(), to, bridge.Media{Kind: bridge.MediaFile, Name: "file.bin", Data: data},
			bridge.Message{Kind: bridge.KindRelay, From: "Proud Wolf"}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := c.filesOf(alice, len(data)); got != b.N {
		b.Fatalf("the fake holds %d of the %d files", got, b.N)
	}
}

// BenchmarkMediaRelay moves a 4 MiB file from one Discord member to another through the core: the
// download from the fake's CDN address, the filter, the multipart upload. It reports the bridge's
// peak media memory as a multiple of the file.
//
//	go test -tags goolm -run '^$' -bench MediaRelay -benchtime 20x ./platforms/discord/
func BenchmarkMediaRelay(b *testing.B) {
	c := startCore(b, unlimited(), unpaced()...)
	alice, bob := c.fake.AddUser("alice"), c.fake.AddUser("bob")
	pw := c.openRoom(b, alice)
	c.fake.SendDM(bob.ID, "/join "+pw)
	c.dmWith(b, bob, 0, "You joined the room")
	data := benchFile()
	file := discordtest.Attachment{Filename: "f.bin", ContentType: "application/octet-stream", Data: data}
	b.SetBytes(int64(len(data)))
	n := c.filesOf(bob, len(data))
	for b.Loop() {
		c.fake.SendDMFiles(alice.ID, "", 0, file)
		n++
		c.waitFake(b, "bob's file", func() bool { return c.filesOf(bob, len(data)) >= n })
	}
	b.ReportMetric(float64(c.b.Stats().MediaPeak)/float64(len(data)), "peak-x-file")
}
