package web

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// upgradeRequest is a WebSocket handshake as a browser sends it, without an Origin (not needed).
const upgradeRequest = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// BenchmarkRefusedConnections: one address already holds its connection cap; every further attempt
// is upgraded and refused with 1008. The attacker keeps every refused socket open on its side, so
// what kumo still holds for them shows in the heap. It reports refusals per second and the heap
// (client sockets included) per refused connection.
//
//	go test -tags goolm -run '^$' -bench RefusedConnections -benchtime 10000x ./platforms/web/
func BenchmarkRefusedConnections(b *testing.B) {
	h := start(b, Config{MaxConnectionsPerIP: 1})
	h.dial(b, "", 0) // the one allowed
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	refusal := []byte{0x88} // a close frame

	kept := make([]net.Conn, 0, b.N)
	defer func() {
		for _, c := range kept {
			c.Close()
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.WriteString(c, upgradeRequest); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c) // until kumo closes its side
		if err != nil || !bytes.Contains(got, []byte("101 Switching Protocols")) || !bytes.Contains(got, refusal) {
			b.Fatalf("attempt not refused: %q %v", got, err)
		}
		kept = append(kept, c)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// Wait for every server-side handler to have returned, then measure what is still held.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "refused/s")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(b.N), "heap-B/held-refused-conn")
	b.ReportMetric(float64(runtime.NumGoroutine()-goroutines), "goroutines-left")
	if open := h.p.limit.open(); open != 1 {
		b.Fatalf("%d connections hold a slot, want the 1 allowed", open)
	}
}
