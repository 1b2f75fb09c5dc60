package main

import (
	"log/slog"
	"net"
	"net/http"
	"time"
)

// timeouts bound how long one HTTP connection may hold kumo's resources while doing nothing useful.
type timeouts struct {
	// header: a client gets this long to send its request headers (slowloris).
	header time.Duration
	// read and write: a whole request and its answer. The web chat's WebSockets are not bound by
	// them: the upgrade clears the connection's deadlines, and the chat sets its own per frame.
	read, write time.Duration
	// idle: a keep-alive connection with no request in flight is closed after it.
	idle time.Duration
}

func defaultTimeouts() timeouts {
	return timeouts{header: 10 * time.Second, read: 30 * time.Second, write: 30 * time.Second, idle: 2 * time.Minute}
}

func newHTTPServer(h http.Handler, log *slog.Logger, t timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.header,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.With("part", "http").Handler(), slog.LevelWarn),
	}
}

// server is one listener and what serves it.
type server struct {
	ln  net.Listener
	srv *http.Server
}

// metricsOnly serves /metrics alone, for http.metrics_listen.
func metricsOnly(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	return mux
}
