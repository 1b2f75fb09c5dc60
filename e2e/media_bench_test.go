package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// BenchmarkMediaMemory: the real binary, rooms.media_memory 64 MiB, a room of 20 Telegram members
// (the fake at Telegram's real limits) who each send a 10 MiB document at once, while one of them
// then writes a line of text. Every file reaches the 19 others (downloaded, filtered, uploaded:
// 3.8 GB in all); reported are kumo's resident memory at its highest (the kernel's VmHWM) above what
// it held before, the media bytes it held at most (kumo_media_bytes_peak), how long the files took
// to reach everyone, how long the text took (in each chat it comes after the files sent before it,
// at Telegram's one send a second per chat), and how long a line took in a quiet room beside it.
func BenchmarkMediaMemory(b *testing.B) {
	const (
		members = 20
		size    = 10 << 20
		budget  = 64 << 20
	)
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		tg := telegramtest.New(b)
		k := startKumo(b, setup{Lifetime: time.Hour, Telegram: tg, MediaMemory: budget, LogLevel: "info"})
		readyFakes(b, ctx, k, tg, nil)
		ps := make([]*tgPerson, members)
		others := make([]person, 0, members-1)
		for i := range ps {
			ps[i] = newTG(tg, fmt.Sprint("Sender", i))
			if i > 0 {
				others = append(others, ps[i])
			}
		}
		openRoom(b, ctx, secret("memory-"+randHex(6)+"-pw"), ps[0], others...)
		// A quiet room beside it: its text must not wait for the files of the busy one.
		qa, qb := newTG(tg, "Quiet"), newTG(tg, "Quieter")
		openRoom(b, ctx, secret("quiet-"+randHex(6)+"-pw"), qa, qb)
		before := make([]int, members)
		for i, p := range ps {
			before[i] = len(tg.Sent(p.u.ID))
		}
		base := procStatus(b, k, "VmRSS")

		start := time.Now()
		for i, p := range ps {
			data := bytes.Repeat([]byte{byte(i)}, size)
			tg.Inject(telegramtest.Incoming{From: p.u, Media: "document", File: data, FileName: fmt.Sprintf("f%d.bin", i), MIME: "application/octet-stream"})
		}
		text := "still talking " + randHex(4)
		ps[0].send(b, ctx, text)
		quiet := "quiet words " + randHex(4)
		mark := len(qb.seen())
		qa.send(b, ctx, quiet)
		waitSeen(b, ctx, qb, mark, "the quiet room's text", contains(quiet))
		quietAt := time.Since(start)
		var textAt, filesAt time.Duration
		for textAt == 0 || filesAt == 0 {
			texts, files := 0, 0
			for i, p := range ps {
				sent := tg.Sent(p.u.ID)
				for j := before[i]; j < len(sent); j++ {
					if len(sent[j].FileData) == size {
						files++
					} else if strings.Contains(sent[j].Text, text) {
						texts++
					}
				}
			}
			if textAt == 0 && texts == members-1 {
				textAt = time.Since(start)
			}
			if filesAt == 0 && files == members*(members-1) {
				filesAt = time.Since(start)
			}
			select {
			case <-ctx.Done():
				b.Fatalf("after %s: %d of %d files and %d of %d texts delivered", time.Since(start), files, members*(members-1), texts, members-1)
			case <-time.After(20 * time.Millisecond):
			}
		}
		peak := procStatus(b, k, "VmHWM")
		m := k.metrics(b)
		if held, ok := m["kumo_media_bytes_peak"]; !ok || held == 0 || held > budget {
			b.Errorf("kumo_media_bytes_peak = %v (reported %v), want a figure within rooms.media_memory (%d)", held, ok, budget)
		}
		b.ReportMetric(float64(peak-base)/(1<<20), "rss-peak-above-start-MiB")
		b.ReportMetric(float64(base)/(1<<20), "rss-start-MiB")
		b.ReportMetric(m["kumo_media_bytes_peak"]/(1<<20), "media-held-peak-MiB")
		b.ReportMetric(textAt.Seconds(), "text-to-all-s")
		b.ReportMetric(quietAt.Seconds(), "quiet-room-text-s")
		b.ReportMetric(filesAt.Seconds(), "files-to-all-s")
		cancel()
	}
	b.ReportMetric(0, "ns/op")
}

// procStatus reads one of kumo's /proc/<pid>/status lines ("VmRSS", "VmHWM"), in bytes.
func procStatus(t testing.TB, k *kumo, key string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", k.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in kumo's /proc status", key)
	return 0
}
