package bridge_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
)

// mediaHarness runs a core with two platforms that show media ("tg" takes 10 MiB, "dc" 1 MiB) and
// one that shows text only ("txt"), in free rooms.
type mediaHarness struct {
	*harness
	tgm, dcm *bridgetest.MediaPlatform
	txt      *bridgetest.Platform
}

func startMedia(t *testing.T, mutate func(*bridge.Config)) *mediaHarness {
	t.Helper()
	cfg := testConfig(free, mutate)
	logs := &bridgetest.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	h := &mediaHarness{
		tgm: bridgetest.NewMedia("tg", bridge.Limits{MaxText: 4096}, 10<<20),
		dcm: bridgetest.NewMedia("dc", bridge.Limits{MaxText: 2000}, 1<<20),
		txt: bridgetest.New("txt", bridge.Limits{MaxText: 4096}),
	}
	h.harness = &harness{dev: lightning.NewDev(log), tg: h.tgm.Platform, dc: h.dcm.Platform, logs: logs}
	h.run(t, cfg, log, h.tgm, h.dcm, h.txt)
	return h
}

// room opens a room for creator and lets the others join; it returns each one's pseudonym.
func (h *mediaHarness) room(t *testing.T, creator bridge.Addr, cp *bridgetest.Platform, others map[bridge.Addr]*bridgetest.Platform) {
	t.Helper()
	pw := h.openRoom(t, cp, creator, "")
	for a, p := range others {
		p.Say(t, a, pw)
		p.WaitText(t, a.Chat, "You joined the room")
	}
}

func TestMediaReachesEveryPlatform(t *testing.T) {
	h := startMedia(t, nil)
	alice, bob, carol, dave := h.tg.User("alice"), h.dc.User("bob"), h.txt.User("carol"), h.tg.User("dave")
	h.room(t, alice, h.tg, map[bridge.Addr]*bridgetest.Platform{bob: h.dc, carol: h.txt, dave: h.tg})
	nick := nickOf(t, h.harness, alice)

	photo := bridgetest.JPEGWithMetadata(t)
	clean, _, err := bridge.StripMetadata(photo)
	if err != nil {
		t.Fatal(err)
	}
	fetches := 0
	h.tg.SayMedia(t, alice, "look at this", bridgetest.File(bridge.MediaFile, "IMG_JohnSmith.JPG", "image/jpeg", photo, &fetches))

	for _, c := range []struct {
		p    *bridgetest.MediaPlatform
		chat string
	}{{h.dcm, bob.Chat}, {h.tgm, dave.Chat}} {
		c.p.WaitFor(t, c.chat, wait, "the file", hasRelay(nick, "look at this"))
		got := c.p.Media(c.chat)
		if len(got) != 1 {
			t.Fatalf("%s got %d files, want 1", c.p.Name(), len(got))
		}
		if got[0].Sum != sha256.Sum256(clean) {
			t.Errorf("%s: the bytes are not the photo without its metadata", c.p.Name())
		}
		if got[0].Name != "file.jpg" || got[0].Kind != bridge.MediaFile || got[0].MIME != "image/jpeg" {
			t.Errorf("%s got %s %q %s, want file \"file.jpg\" image/jpeg", c.p.Name(), got[0].Kind, got[0].Name, got[0].MIME)
		}
	}
	h.txt.WaitText(t, carol.Chat, "📎 "+nick+" sent a file, which txt can't show here.")
	h.txt.WaitFor(t, carol.Chat, wait, "the caption", hasRelay(nick, "look at this"))
	if fetches != 1 {
		t.Errorf("the file was downloaded %d times, want once for every recipient", fetches)
	}
	for _, m := range h.tg.Messages(alice.Chat) {
		if strings.Contains(m.Text, "📎") {
			t.Errorf("the sender was told %q", m.Text)
		}
	}
	if st := h.b.Stats(); st.MediaBytes != 0 {
		// Every upload is done: nothing may stay held. Stats are read after the waits above, but
		// the last upload's release may follow its send by a moment, so wait for it.
		deadline := time.Now().Add(wait)
		for h.b.Stats().MediaBytes != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if st := h.b.Stats(); st.MediaBytes != 0 {
			t.Errorf("%d media bytes still held after every upload", st.MediaBytes)
		}
	}
}

func TestOversizedMediaIsToldToItsSenderOnly(t *testing.T) {
	h := startMedia(t, func(c *bridge.Config) { c.MaxMediaBytes = 3 << 20 })
	alice, bob, dave := h.tg.User("alice"), h.dc.User("bob"), h.tg.User("dave")
	h.room(t, alice, h.tg, map[bridge.Addr]*bridgetest.Platform{bob: h.dc, dave: h.tg})
	nick := nickOf(t, h.harness, alice)

	tests := []struct {
		name       string
		size       int
		toAlice    string
		daveGetsIt bool
	}{
		{"too big for dc only", 2 << 20, "📎 Your file (2.0 MB) is too big for the members on dc (their limit is 1.0 MB): they did not get it.", true},
		{"too big for kumo", 4 << 20, "📎 Your file (4.0 MB) is too big to relay: the limit is 3.0 MB. Nobody got it.", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caption := fmt.Sprintf("file %d", i)
			fetches := 0
			h.tg.SayMedia(t, alice, caption, bridgetest.File(bridge.MediaFile, "a.bin", "", bytes.Repeat([]byte{byte(i)}, tc.size), &fetches))
			h.tg.WaitText(t, alice.Chat, tc.toAlice)
			// A text sent after it arrives after whatever the file became.
			h.tg.Say(t, alice, "after "+caption)
			h.dc.WaitFor(t, bob.Chat, wait, "the next text", hasRelay(nick, "after "+caption))
			h.tg.WaitFor(t, dave.Chat, wait, "the next text", hasRelay(nick, "after "+caption))
			if hasRelay(nick, caption)(h.dc.Messages(bob.Chat)) {
				t.Error("dc's member got the file's caption")
			}
			for _, m := range h.dc.Messages(bob.Chat) {
				if strings.Contains(m.Text, "📎") || strings.Contains(m.Text, "too big") {
					t.Errorf("dc's member was told %q", m.Text)
				}
			}
			if got := hasRelay(nick, caption)(h.tg.Messages(dave.Chat)); got != tc.daveGetsIt {
				t.Errorf("tg's member got the file: %v, want %v", got, tc.daveGetsIt)
			}
			if !tc.daveGetsIt && fetches != 0 {
				t.Errorf("a file known to be too big was downloaded %d times", fetches)
			}
		})
	}
}

func TestMediaUploadHoldsUpOnlyItsRecipient(t *testing.T) {
	h := startMedia(t, nil)
	alice, bob, dave := h.tg.User("alice"), h.dc.User("bob"), h.tg.User("dave")
	h.room(t, alice, h.tg, map[bridge.Addr]*bridgetest.Platform{bob: h.dc, dave: h.tg})
	nick := nickOf(t, h.harness, alice)
	release := h.dcm.HoldUploads()

	h.tg.SayMedia(t, alice, "a photo", bridgetest.File(bridge.MediaPhoto, "x.png", "image/png", bridgetest.PNGWithMetadata(t), nil))
	h.tg.Say(t, alice, "and a text")
	// Dave (tg) gets both while bob's upload is held; bob gets nothing out of order.
	h.tg.WaitFor(t, dave.Chat, wait, "the photo and the text", hasRelay(nick, "and a text"))
	if hasRelay(nick, "and a text")(h.dc.Messages(bob.Chat)) {
		t.Fatal("bob got the text before the photo sent before it")
	}
	release()
	ms := h.dc.WaitFor(t, bob.Chat, wait, "the text after the photo", hasRelay(nick, "and a text"))
	rs := relays(ms)
	if len(rs) < 2 || rs[len(rs)-2].Text != "a photo" || rs[len(rs)-1].Text != "and a text" {
		t.Errorf("bob's relays, want the photo then the text:\n%s", bridgetest.Dump(rs))
	}
}

// TestMediaMemoryIsBounded: 20 members each send a 10 MiB file at once to the 19 others. The bytes
// held never pass rooms.media_memory, every file arrives, and text keeps flowing meanwhile.
func TestMediaMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 3.8 GB through the core")
	}
	const (
		members = 20
		size    = 10 << 20
		budget  = 64 << 20
	)
	h := startMedia(t, func(c *bridge.Config) { c.MediaMemory = budget })
	var users []bridge.Addr
	for i := range members {
		users = append(users, h.tg.User(fmt.Sprintf("u%d", i)))
	}
	others := map[bridge.Addr]*bridgetest.Platform{}
	for _, u := range users[1:] {
		others[u] = h.tg
	}
	carol := h.txt.User("carol")
	others[carol] = h.txt
	h.room(t, users[0], h.tg, others)
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)

	var heapPeak, rssPeak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > heapPeak.Load() {
				heapPeak.Store(ms.HeapInuse)
			}
			if r := rss(); r > rssPeak.Load() {
				rssPeak.Store(r)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	})
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	baseRSS := rss()
	for i, u := range users {
		h.tg.SayMedia(t, u, fmt.Sprintf("file %d", i), bridgetest.File(bridge.MediaFile, "f.bin", "", data, nil))
	}
	// The text-only member hears text at once, whatever the files are doing.
	h.tg.Say(t, users[0], "text meanwhile")
	h.txt.WaitFor(t, carol.Chat, wait, "text meanwhile", hasRelay(nickOf(t, h.harness, users[0]), "text meanwhile"))
	for _, u := range users {
		h.tg.WaitFor(t, u.Chat, 2*time.Minute, "19 files", func(ms []bridge.Message) bool {
			return len(h.tgm.Media(u.Chat)) == members-1
		})
	}
	close(stopSampling)
	sampled.Wait()
	st := h.b.Stats()
	if st.MediaPeak > budget {
		t.Errorf("%d media bytes were held at once; the budget is %d", st.MediaPeak, budget)
	}
	if st.MediaPeak < size {
		t.Errorf("peak %d: the accounting saw less than one file", st.MediaPeak)
	}
	t.Logf("media held at most %.1f MiB (budget %d MiB); heap in use at most %.1f MiB above the %.1f MiB before; RSS at most %.1f MiB above the %.1f MiB before",
		float64(st.MediaPeak)/(1<<20), budget>>20, float64(heapPeak.Load()-min(heapPeak.Load(), base.HeapInuse))/(1<<20), float64(base.HeapInuse)/(1<<20),
		float64(rssPeak.Load()-min(rssPeak.Load(), baseRSS))/(1<<20), float64(baseRSS)/(1<<20))
}

// BenchmarkMediaRelay moves a 4 MiB file from one member to five others on a media platform:
// bytes per second through the core (download, strip, fan-out, upload) and the peak media memory
// as a multiple of the file's size.
func BenchmarkMediaRelay(b *testing.B) {
	const size = 4 << 20
	cfg := bridge.DefaultConfig()
	cfg.PriceSat, cfg.FloodRate = 0, 0
	p := bridgetest.NewMedia("tg", bridge.Limits{MaxText: 4096}, 50<<20)
	br, err := bridge.New(cfg, nil, nil, p)
	if err != nil {
		b.Fatal(err)
	}
	bridgetest.Run(b, br)
	alice := p.User("alice")
	p.Say(b, alice, "/newroom")
	pw := p.WaitText(b, alice.Chat, "Your room is open").Code
	var others []bridge.Addr
	for i := range 5 {
		u := p.User(fmt.Sprintf("m%d", i))
		p.Say(b, u, pw)
		p.WaitText(b, u.Chat, "You joined")
		others = append(others, u)
	}
	data := bytes.Repeat([]byte("kumo"), size/4)
	b.SetBytes(size)
	n := 0
	for b.Loop() {
		n++
		p.SayMedia(b, alice, "", bridgetest.File(bridge.MediaFile, "f.bin", "", data, nil))
		for _, u := range others {
			p.WaitFor(b, u.Chat, time.Minute, "the file", func([]bridge.Message) bool { return len(p.Media(u.Chat)) >= n })
		}
	}
	b.ReportMetric(float64(br.Stats().MediaPeak)/size, "peak-x-file")
}

// rss is the process's resident set size from /proc (0 where there is none).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// A file's name across the room is its kind's word and an extension: the sender's own extension
// when it is a plain one, else the usual one for its type (the same on every machine), never a
// word of the original name.
func TestNeutralName(t *testing.T) {
	for _, tc := range []struct {
		kind       bridge.MediaKind
		name, mime string
		want       string
	}{
		{bridge.MediaPhoto, "IMG_JohnSmith.JPG", "image/jpeg", "photo.jpg"},
		{bridge.MediaPhoto, "", "image/jpeg", "photo.jpg"},
		{bridge.MediaVoice, "", "audio/ogg; codecs=opus", "voice.ogg"},
		{bridge.MediaVoice, "Voice message", "audio/ogg", "voice.ogg"},
		{bridge.MediaFile, "John Smith's notes", "text/plain; charset=utf-8", "file.txt"},
		{bridge.MediaVideo, "", "video/mp4", "video.mp4"},
		{bridge.MediaAudio, "song.m4a", "audio/mp4", "audio.m4a"},
		{bridge.MediaFile, "report.John Smith", "application/pdf", "file.pdf"},
		{bridge.MediaFile, `C:\Users\john\secret.docx`, "", "file.docx"},
		{bridge.MediaFile, "noext", "application/x-unknown-kind", "file"},
		{bridge.MediaSticker, "", "image/webp", "sticker.webp"},
	} {
		if got := bridge.NeutralName(tc.kind, tc.name, tc.mime); got != tc.want {
			t.Errorf("NeutralName(%s, %q, %q) = %q, want %q", tc.kind, tc.name, tc.mime, got, tc.want)
		}
	}
}

// A file's type is what its sender declared when that is a type at all, else what its bytes are.
func TestMediaType(t *testing.T) {
	for _, tc := range []struct {
		declared string
		data     []byte
		want     string
	}{
		{"image/png; x=1", []byte("GIF89a...."), "image/png"},
		{"", []byte("GIF89a\x01\x00\x01\x00"), "image/gif"},
		{"", []byte("\x89PNG\r\n\x1a\n...."), "image/png"},
		{"", []byte("\xff\xd8\xff\xe0...."), "image/jpeg"},
		{"nonsense", []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "image/webp"},
		{"", []byte("%PDF-1.7\n"), "application/pdf"},
		{"", []byte("hello there"), "text/plain"},
		{"", []byte{0x00, 0x01, 0x02, 0x03}, "application/octet-stream"},
	} {
		if got := bridge.MediaType(tc.declared, tc.data); got != tc.want {
			t.Errorf("mediaType(%q, %q) = %q, want %q", tc.declared, tc.data, got, tc.want)
		}
	}
}

// TestVideoMetadataIsStripped: a video, a video message, an MP4 animation and an MP4 sent as a
// file all go through the metadata filter on their way to another member: its location, make and
// model never reach them, and every other byte (the sample offsets, the frames) is as it was sent.
func TestVideoMetadataIsStripped(t *testing.T) {
	h := startMedia(t, nil)
	alice, bob := h.tg.User("alice"), h.dc.User("bob")
	h.room(t, alice, h.tg, map[bridge.Addr]*bridgetest.Platform{bob: h.dc})
	nick := nickOf(t, h.harness, alice)

	p := iphoneParts()                       // strip_mp4_test.go
	p.ftyp = mp4Ftyp("mp42", "mp42", "isom") // what net/http sniffs as video/mp4 (not "qt  ")
	video := mp4File(p)
	clean, ok, err := bridge.StripMetadata(video)
	if err != nil || !ok {
		t.Fatalf("StripMetadata: ok=%v err=%v", ok, err)
	}
	if err := checkMP4(video, clean); err != nil {
		t.Fatal(err)
	}
	for _, l := range mp4Leaks {
		if bytes.Contains(clean, []byte(l)) {
			t.Fatalf("%q survived the filter", l)
		}
	}
	for i, c := range []struct {
		kind       bridge.MediaKind
		name, mime string
		want       string // the neutral name bob sees
	}{
		{bridge.MediaVideo, "IMG_4521.MOV", "video/quicktime", "video.mov"},
		{bridge.MediaVideoNote, "", "video/mp4", "video.mp4"},
		{bridge.MediaAnimation, "John.mp4", "video/mp4", "animation.mp4"},
		{bridge.MediaFile, "VID_20240501.mp4", "", "file.mp4"},
	} {
		caption := fmt.Sprintf("clip %d", i)
		h.tg.SayMedia(t, alice, caption, bridgetest.File(c.kind, c.name, c.mime, video, nil))
		h.dcm.WaitFor(t, bob.Chat, wait, "the "+string(c.kind), hasRelay(nick, caption))
		got := h.dcm.Media(bob.Chat)
		if len(got) != i+1 {
			t.Fatalf("bob got %d files, want %d", len(got), i+1)
		}
		r := got[i]
		if r.Sum != sha256.Sum256(clean) || r.Len != len(video) {
			t.Errorf("%s: bob got %d bytes that are not the video without its metadata", c.kind, r.Len)
		}
		wantMIME := c.mime
		if wantMIME == "" {
			wantMIME = "video/mp4" // sniffed from the bytes, whose ftyp the filter keeps
		}
		if r.Kind != c.kind || r.Name != c.want || r.MIME != wantMIME {
			t.Errorf("bob got %s %q %s, want %s %q %s", r.Kind, r.Name, r.MIME, c.kind, c.want, wantMIME)
		}
	}
}

// A file the filter cannot walk reaches nobody, and its sender hears why in words that fit what
// they sent: a photo's place and camera, a video's, an audio file's tags.
func TestDamagedMediaIsRefusedToItsSender(t *testing.T) {
	h := startMedia(t, nil)
	alice, bob := h.tg.User("alice"), h.dc.User("bob")
	h.room(t, alice, h.tg, map[bridge.Addr]*bridgetest.Platform{bob: h.dc})
	nick := nickOf(t, h.harness, alice)
	jpeg := bridgetest.JPEGWithMetadata(t)
	for i, tc := range []struct {
		kind bridge.MediaKind
		mime string
		data []byte
		want string
	}{
		{bridge.MediaPhoto, "image/jpeg", jpeg[:len(jpeg)/2], "photo looks damaged, so I could not remove its metadata (where and with what it was taken"},
		{bridge.MediaVideo, "video/mp4", []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\xff\xffmoov"), "video looks damaged, so I could not remove its metadata (where and with what it was recorded"},
	} {
		h.tg.SayMedia(t, alice, fmt.Sprint("damaged ", i), bridgetest.File(tc.kind, "x", tc.mime, tc.data, nil))
		h.tg.WaitText(t, alice.Chat, tc.want)
	}
	h.tg.Say(t, alice, "after")
	h.dc.WaitFor(t, bob.Chat, wait, "the next text", hasRelay(nick, "after"))
	if n := len(h.dcm.Media(bob.Chat)); n != 0 {
		t.Errorf("bob got %d damaged files", n)
	}
	for _, m := range h.dc.Messages(bob.Chat) {
		if strings.Contains(m.Text, "damaged") {
			t.Errorf("bob was shown %q", m.Text)
		}
	}
}
