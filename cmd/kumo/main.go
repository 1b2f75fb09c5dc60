// Command kumo runs anonymous, self-destructing chat rooms inside Telegram, Discord, Matrix and its
// own web chat, paid for with Lightning. With no configuration it runs the web chat with the
// development payment backend, so `kumo` alone shows the whole product.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kumo:", err)
		os.Exit(1)
	}
}

// run is kumo's whole life: load the configuration, wire the parts, run them until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := configure(args, stdout, getenv)
	if err != nil || cfg == nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	return serve(ctx, cfg, log, stdout)
}

// configure reads the flags and the configuration. A nil config with a nil error means there is
// nothing to run (-h, -version).
func configure(args []string, stdout io.Writer, getenv func(string) string) (*config, error) {
	fs := flag.NewFlagSet("kumo", flag.ContinueOnError)
	// flag's own messages are replaced by run's error and by -h's text on stdout.
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "the configuration `file` (YAML); the one argument does the same; default ./config.yaml if present")
	version := fs.Bool("version", false, "print kumo's version and exit")
	keys, _ := newConfig().schema()
	flags := map[string]string{}
	for _, k := range keys {
		if k.secret {
			continue
		}
		usage := fmt.Sprintf("the `value` of %s (also %s): %s", k.path, k.env, k.want)
		if k.ex != "" {
			usage += ", e.g. " + k.ex
		}
		if k.field.Kind() == reflect.Bool {
			fs.BoolFunc(k.path, usage, func(s string) error { flags[k.path] = s; return nil })
		} else {
			fs.Func(k.path, usage, func(s string) error { flags[k.path] = s; return nil })
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs, keys)
			return nil, nil
		}
		return nil, fmt.Errorf("%w (kumo -h lists the flags and environment variables)", err)
	}
	if *version {
		fmt.Fprintln(stdout, versionString())
		return nil, nil
	}
	switch fs.NArg() {
	case 0:
	case 1:
		if *path != "" && *path != fs.Arg(0) {
			return nil, fmt.Errorf("two configuration files given: -config %s and %s; give one", *path, fs.Arg(0))
		}
		*path = fs.Arg(0)
	default:
		return nil, fmt.Errorf("unexpected arguments %q: kumo takes at most one, its configuration file (kumo -h for help)", fs.Args())
	}
	f, used, err := openConfig(*path)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	if f != nil {
		defer f.Close()
		r = f
	}
	return loadConfig(r, used, getenv, flags)
}

// usage is -h's text: the flags, then every environment variable, each with the key it sets.
func usage(w io.Writer, fs *flag.FlagSet, keys []key) {
	fmt.Fprint(w, `Usage: kumo [flags] [config.yaml]

kumo runs anonymous, self-destructing chat rooms in Telegram, Discord, Matrix and its own web chat,
paid with Lightning. With no configuration it runs the web chat on simulated payments (no real money).

Settings come from the file (-config FILE, the one argument, or ./config.yaml if present), then from
KUMO_* environment variables, then from flags: each later one overrides the same key. A platform
runs when its section is set by any of them; config.example.yaml explains every key.

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(w, "\nEnvironment variables (secrets are set here or in the file, never by flags):\n")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, k := range keys {
		note := ""
		if k.secret {
			note = " (secret)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s: %s\n", k.env, k.path, note, k.want)
	}
	_ = tw.Flush()
}

// versionString is the module version and VCS revision the binary was built from.
func versionString() string {
	v := "(unknown)"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "kumo " + v
	}
	v = info.Main.Version
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev != "" {
		v += " " + rev[:min(12, len(rev))] + modified
	}
	return fmt.Sprintf("kumo %s (%s)", v, info.GoVersion)
}

func newLogger(w io.Writer, c logConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve builds every part from cfg, from the tables in parts.go, and runs them.
func serve(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer) error {
	var (
		pay bridge.Payments
		w   = wiring{http: cfg.HTTP}
	)
	if b := cfg.backend; b != nil {
		p, err := b.build(ctx, cfg.backendCfg[b.name], log.With("part", "payments-"+b.name))
		if err != nil {
			return err
		}
		if c, ok := p.(io.Closer); ok {
			defer c.Close()
		}
		pay = p
		if dev, ok := p.(*lightning.Dev); ok {
			w.simulate = dev.Pay
			log.Warn("SIMULATED PAYMENTS: the development payment backend takes no real money; its invoices are paid with the web chat's simulate button. Set lightning.backend: lnd for real payments.")
		}
	}

	// Listening before the platforms are made tells them the bound address (http.listen may ask for
	// port 0), which the web chat's invite links carry when web.public_url is not set.
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	defer ln.Close() // a no-op once served; closes it when kumo stops before serving
	w.listenAddr = ln.Addr().String()
	var (
		parts []bridge.Platform
		page  http.Handler
	)
	for _, row := range cfg.on {
		p, err := row.build(cfg.platformCfg[row.name], log.With("part", row.name), w)
		if err != nil {
			return err
		}
		if h, ok := p.(interface{ Handler() http.Handler }); ok {
			page = h.Handler()
		}
		parts = append(parts, p)
	}

	b, err := bridge.New(cfg.Rooms, pay, log.With("part", "bridge"), parts...)
	if err != nil {
		return err
	}

	metrics := metricsHandler(b)
	servers := []*server{{ln: ln}}
	metricsAddr := ln.Addr()
	if cfg.HTTP.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.HTTP.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("http.metrics_listen: %w", err)
		}
		servers = append(servers, &server{ln: mln, srv: newHTTPServer(metricsOnly(metrics), log, defaultTimeouts())})
		metrics, metricsAddr = nil, mln.Addr() // not on the main listener
	}
	servers[0].srv = newHTTPServer(httpHandler(b.Platforms, metrics, page), log, defaultTimeouts())

	g, gctx := errgroup.WithContext(ctx)
	for _, s := range servers {
		g.Go(func() error {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		// The bridge outlives ctx long enough to tell members their rooms are gone.
		err := b.Run(gctx)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.srv.Shutdown(sctx)
		}
		return err
	})
	// "kumo is running" waits until every platform has connected or failed once, so that a rejected
	// token is the error an operator sees, not a line after "running".
	select {
	case <-b.Started():
		var down []bridge.PlatformStatus
		for _, p := range b.Platforms() {
			if p.State == bridge.PlatformDown {
				down = append(down, p)
			}
		}
		announce(stdout, cfg, ln.Addr(), metricsAddr, page != nil, w.simulate != nil, down)
	case <-gctx.Done():
	}
	err = g.Wait()
	log.Info("kumo stopped")
	return err
}

// announce says where kumo serves and what to do next.
func announce(stdout io.Writer, cfg *config, addr, metricsAddr net.Addr, web, dev bool, down []bridge.PlatformStatus) {
	url, murl := displayURL(addr), displayURL(metricsAddr)
	if cfg.source == "" && cfg.devDefault && len(cfg.on) == 1 {
		fmt.Fprintf(stdout, "kumo is running on its built-in defaults: open %s to create a room (development payments, no real money).\n", url)
		fmt.Fprintln(stdout, "To connect Telegram, Discord, Matrix and a real lnd node, copy config.example.yaml to config.yaml and fill it in (see README.md).")
	} else {
		with := cfg.source
		if with == "" {
			with = "settings from the environment and flags"
		}
		fmt.Fprintf(stdout, "kumo is running with %s; health and metrics on %s/healthz and %s/metrics.\n", with, url, murl)
		if web {
			fmt.Fprintf(stdout, "Web chat: %s\n", url)
		}
		if dev {
			fmt.Fprintln(stdout, "SIMULATED PAYMENTS (lightning.backend: dev): no real money moves; invoices are paid with the web chat's simulate button.")
		}
	}
	for _, p := range down {
		fmt.Fprintf(stdout, "%s is not reachable yet; the others run and it is tried again (see /healthz): %s\n", p.Name, p.Error)
	}
}

// displayURL is the address people can open: a wildcard listener (":8080", "[::]:8080") is shown as
// localhost, which reaches it from this machine.
func displayURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// health is /healthz: "ok" when every platform is up, "degraded" while one is connecting or down
// (and retried); always 200, since kumo serves whatever is up.
type health struct {
	Status    string                           `json:"status"`
	Platforms map[string]bridge.PlatformStatus `json:"platforms"`
}

// metricsHandler serves the bridge's counters in the Prometheus format.
func metricsHandler(b *bridge.Bridge) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func(bridge.Stats) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(b.Stats()) }))
	}
	counter := func(name, help string, f func(bridge.Stats) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(b.Stats()) }))
	}
	gauge("kumo_rooms_open", "Rooms open now.", func(s bridge.Stats) float64 { return float64(s.Rooms) })
	gauge("kumo_members", "Members in open rooms.", func(s bridge.Stats) float64 { return float64(s.Members) })
	gauge("kumo_delivery_queues", "Recipients with messages waiting to be delivered.", func(s bridge.Stats) float64 { return float64(s.PendingDeliveries) })
	gauge("kumo_media_bytes", "Bytes of photos and files held in memory now, for relaying (bounded by rooms.media_memory).", func(s bridge.Stats) float64 { return float64(s.MediaBytes) })
	gauge("kumo_media_bytes_peak", "The most bytes of photos and files held in memory at once since the start.", func(s bridge.Stats) float64 { return float64(s.MediaPeak) })
	counter("kumo_messages_relayed_total", "Member messages relayed to their room.", func(s bridge.Stats) float64 { return float64(s.Relayed) })
	counter("kumo_deliveries_total", "Messages delivered to a person.", func(s bridge.Stats) float64 { return float64(s.Delivered) })
	counter("kumo_deliveries_failed_total", "Messages that could not be delivered after retries.", func(s bridge.Stats) float64 { return float64(s.DeliveriesFailed) })
	counter("kumo_invoices_created_total", "Invoices created for new rooms.", func(s bridge.Stats) float64 { return float64(s.InvoicesCreated) })
	counter("kumo_invoices_paid_total", "Invoices paid.", func(s bridge.Stats) float64 { return float64(s.InvoicesPaid) })
	counter("kumo_invoices_expired_total", "Invoices that expired unpaid.", func(s bridge.Stats) float64 { return float64(s.InvoicesExpired) })
	counter("kumo_messages_erased_total", "Messages the self-destruct wipe deleted from members' chats.", func(s bridge.Stats) float64 { return float64(s.Erased) })
	counter("kumo_messages_erase_failed_total", "Messages the wipe could not delete (refused, too old, or kumo stopped first).", func(s bridge.Stats) float64 { return float64(s.EraseFailed) })
	counter("kumo_message_refs_dropped_total", "Messages not recorded for the wipe because their room's record was full (rooms.max_refs).", func(s bridge.Stats) float64 { return float64(s.RefsDropped) })
	counter("kumo_join_attempts_throttled_total", "Join attempts (passwords, invites, creator keys, /newroom passwords) answered \"busy, try again\" by a guess limit, unchecked.", func(s bridge.Stats) float64 { return float64(s.JoinAttemptsThrottled) })

	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// httpHandler serves /healthz (from status, the platforms' states; nil for none), /metrics (unless
// nil: it is served on its own address) and the web chat's page (when not nil).
func httpHandler(status func() []bridge.PlatformStatus, metrics, page http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		h := health{Status: "ok", Platforms: map[string]bridge.PlatformStatus{}}
		var all []bridge.PlatformStatus
		if status != nil {
			all = status()
		}
		for _, p := range all {
			h.Platforms[p.Name] = p
			if p.State != bridge.PlatformUp {
				h.Status = "degraded"
			}
		}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(h)
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	if page != nil {
		mux.Handle("/", page)
	}
	return mux
}
