package matrix

import (
	"bytes"
	"context"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
)

// benchFileSize is the file the media benchmarks move: well under matrixtest's Dendrite
// max_file_size_bytes (10 MiB), like the Telegram adapter's benchmarks.
const benchFileSize = 4 << 20

// Pacing. The adapter paces every event it sends and every upload through one budget (5/s, bursts
// of 10, by default), and a file costs three of them: the upload, the sender's pseudonym line and
// the file event. Paced, a steady stream of files is bounded at 5/3 files a second, about 7.0 MB/s
// of 4 MiB files, whatever the homeserver and the machine could do. The benchmarks lift the pacing
// (WithRate(rate.Inf, 1), as BenchmarkRedact does) to measure the adapter and Dendrite, except
// BenchmarkMediaUpload/encrypted-paced, which keeps the default to show that bound.
var unpaced = []Option{WithRate(rate.Inf, 1)}

// BenchmarkMediaUpload sends a 4 MiB file through the adapter's SendMedia to a member's DM on
// Dendrite, each iteration waiting until the member's own client (syncing and decrypting in the
// background) has the file event: the bytes a member gets per second, not only the upload call.
// In an encrypted DM the adapter copies the file, encrypts it with a fresh key (AES-CTR, plus the
// ciphertext's SHA-256) and uploads the ciphertext; the unencrypted DM shows what that costs.
// Unpaced, what bounds it is that work, Dendrite's upload (it hashes and stores the file) and the
// round trip to the member's /sync; encrypted-paced starts with the pacing's burst spent, so it
// shows the default pacing's steady bound (see unpaced).
//
//	go test -tags goolm -run '^$' -bench MediaUpload -benchtime 10x ./platforms/matrix/
func BenchmarkMediaUpload(b *testing.B) {
	for _, tc := range []struct {
		name      string
		encrypted bool
		opts      []Option
	}{
		{"encrypted", true, unpaced},
		{"unencrypted", false, unpaced},
		{"encrypted-paced", true, nil},
	} {
		b.Run(tc.name, func(b *testing.B) { benchUpload(b, tc.encrypted, tc.opts) })
	}
}

func benchUpload(b *testing.B, encrypted bool, opts []Option) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bt := startBot(b, ctx, &bridgetest.Inbox{}, opts...)
	alice := login(b, ctx, "alice")
	room := openDM(b, ctx, alice, bt, encrypted)
	to := bridge.Addr{Platform: Name, User: alice.ID.String(), Chat: room.String()}
	if opts == nil {
		// Spend the default burst, so the iterations see the steady rate however many there are.
		for range DefaultPacing().GlobalBurst {
			if err := bt.a.limiter.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	data := bytes.Repeat([]byte("kumo"), benchFileSize/4)
	md := bridge.Media{Kind: bridge.MediaFile, MIME: "application/octet-stream", Name: "file.bin", Data: data}
	var last *event.MessageEventContent
	b.SetBytes(benchFileSize)
	for b.Loop() {
		ids, err := bt.a.SendMedia(ctx, to, md, bridge.Message{Kind: bridge.KindRelay, From: "Proud Wolf"})
		if err != nil || len(ids) != 2 {
			b.Fatalf("SendMedia: %v, %v; want the line's and the file's ids", ids, err)
		}
		evt, err := alice.WaitEvent(ctx, func(e *event.Event) bool { return e.ID == id.EventID(ids[1]) })
		if err != nil {
			b.Fatal(err)
		}
		last = evt.Content.AsMessage()
	}
	// Not timed: the last file is what was sent, encrypted where the room is.
	if encrypted != (last.File != nil) {
		b.Fatalf("encrypted room %v: the file event carries an encrypted file: %v", encrypted, last.File != nil)
	}
	if got, err := alice.Download(ctx, last); err != nil || !bytes.Equal(got, data) {
		b.Fatalf("alice downloads %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
	if n := alice.DecryptFailures(); n != 0 {
		b.Fatalf("alice could not decrypt %d events", n)
	}
}

// BenchmarkMediaRelay relays a 4 MiB file a Matrix member sends in an encrypted DM, through the
// core, to a member on a fake platform (bridgetest.NewMedia) and to a second Matrix member in an
// encrypted DM: the adapter downloads and decrypts it once, the core runs its metadata filter (a
// file that is no image passes as is) and fans it out, the adapter re-encrypts it with a fresh key
// and uploads it for the second member. Each iteration waits until the fake has the file and the
// second member's client has the file event. The sender encrypts and uploads the file once, before
// the loop, and every iteration sends a new event for it: that is the member's client's work, not
// the bridge's. Pacing is lifted (see unpaced); with it each file would cost the second member's
// DM three events. It reports peak-x-file: the core's media memory at its peak (Stats().MediaPeak)
// over the file's size; the adapter's copy for encrypting and the HTTP buffers are not in it.
//
//	go test -tags goolm -run '^$' -bench MediaRelay -benchtime 10x ./platforms/matrix/
func BenchmarkMediaRelay(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := bridge.DefaultConfig()
	cfg.PriceSat, cfg.FloodRate = 0, 0
	bt := newBot(b, ctx, hs.URL, unpaced...)
	other := bridgetest.NewMedia("other", bridge.Limits{MaxText: 4096}, 50<<20)
	br, err := bridge.New(cfg, nil, nil, bt.a, other)
	if err != nil {
		b.Fatal(err)
	}
	// Stopped at cleanup, with a deadline.
	bt.waitReady(b, ctx, bridgetest.Background(b, "bridge", br.Run))
	alice := login(b, ctx, "alice")
	bob := login(b, ctx, "bob")
	aliceDM := openDM(b, ctx, alice, bt, true)
	bobDM := openDM(b, ctx, bob, bt, true)
	if err := alice.SendText(ctx, aliceDM, "!newroom"); err != nil {
		b.Fatal(err)
	}
	opened := message(b, ctx, alice, aliceDM, bt.id, func(c *event.MessageEventContent) bool { return strings.Contains(c.Body, "room is open") })
	password := opened.Body[strings.LastIndex(opened.Body, "\n")+1:]
	olly := other.User("olly")
	other.Say(b, olly, password)
	other.WaitText(b, olly.Chat, "You joined the room")
	if err := bob.SendText(ctx, bobDM, password); err != nil {
		b.Fatal(err)
	}
	message(b, ctx, bob, bobDM, bt.id, func(c *event.MessageEventContent) bool { return strings.HasPrefix(c.Body, "You joined the room as ") })

	data := bytes.Repeat([]byte("kumo"), benchFileSize/4)
	file := attachment.NewEncryptedFile()
	ciphertext := append([]byte(nil), data...)
	file.EncryptInPlace(ciphertext)
	up, err := alice.Client.UploadBytes(ctx, ciphertext, "application/octet-stream")
	if err != nil {
		b.Fatal(err)
	}
	content := &event.MessageEventContent{MsgType: event.MsgFile, Body: "Report of Alice.bin",
		Info: &event.FileInfo{MimeType: "application/octet-stream", Size: len(data)},
		File: &event.EncryptedFileInfo{EncryptedFile: *file, URL: up.ContentURI.CUString()}}
	seen := map[id.EventID]bool{} // bob's file events so far
	var last *event.MessageEventContent
	n := 0
	b.SetBytes(benchFileSize)
	for b.Loop() {
		n++
		if _, err := alice.Client.SendMessageEvent(ctx, aliceDM, event.EventMessage, content); err != nil {
			b.Fatal(err)
		}
		other.WaitFor(b, olly.Chat, time.Minute, "the file", func([]bridge.Message) bool { return len(other.Media(olly.Chat)) >= n })
		evt, err := bob.WaitEvent(ctx, func(e *event.Event) bool {
			return e.RoomID == bobDM && e.Sender == bt.id && e.Type == event.EventMessage &&
				e.Content.AsMessage().MsgType == event.MsgFile && !seen[e.ID]
		})
		if err != nil {
			b.Fatal(err)
		}
		seen[evt.ID] = true
		last = evt.Content.AsMessage()
	}
	b.ReportMetric(float64(br.Stats().MediaPeak)/benchFileSize, "peak-x-file")
	// Not timed: both got the bytes alice sent, bob as an encrypted file.
	if got := other.Media(olly.Chat); len(got) != n || got[n-1].Sum != sha256.Sum256(data) {
		b.Fatalf("olly has %d files, the last %d bytes; want %d, the %d alice sent", len(got), got[len(got)-1].Len, n, len(data))
	}
	if last.File == nil {
		b.Fatal("bob's file is not encrypted")
	}
	if got, err := bob.Download(ctx, last); err != nil || !bytes.Equal(got, data) {
		b.Fatalf("bob decrypts %d bytes (%v), want the %d alice sent", len(got), err, len(data))
	}
	for _, u := range []*matrixtest.User{alice, bob} {
		if f := u.DecryptFailures(); f != 0 {
			b.Fatalf("%s could not decrypt %d events", u.ID, f)
		}
	}
}
