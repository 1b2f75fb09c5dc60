// Command kumo runs anonymous, self-destructing chat rooms inside Telegram, Discord, Matrix and its
// own web chat, paid for with Lightning. With no configuration it runs the web chat with the
// development payment backend, so `kumo` alone shows the whole product.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/platforms/discord"
	"github.com/kumo-chat/kumo/platforms/matrix"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/web"
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
	fs := flag.NewFlagSet("kumo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.yaml", "configuration file (YAML); without one kumo runs its web chat on development payments")
	if err := fs.Parse(args); err != nil {
		return err
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })

	cfg := defaults()
	f, used, err := openConfig(*path, explicit)
	if err != nil {
		return err
	}
	if f != nil {
		cfg, err = loadConfig(f, getenv)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", used, err)
		}
	}
	if v := getenv("KUMO_HTTP_LISTEN"); v != "" {
		cfg.HTTP.Listen = v
	}
	log := newLogger(stderr, cfg.Log)
	return serve(ctx, cfg, used, log, stdout)
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

// serve builds every part from cfg and runs them.
func serve(ctx context.Context, cfg config, configPath string, log *slog.Logger, stdout io.Writer) error {
	var (
		pay bridge.Payments
		dev *lightning.Dev
	)
	switch cfg.Lightning.Backend {
	case "lnd":
		b, err := lnd.New(ctx, *cfg.Lightning.LND, log.With("part", "lnd"))
		if err != nil {
			return err
		}
		defer b.Close()
		pay = b
	default:
		dev = lightning.NewDev(log.With("part", "payments-dev"))
		pay = dev
		log.Warn("development payment backend: invoices are not real and are paid with the web page's simulate button; set lightning.backend: lnd for real payments")
	}

	var platforms []bridge.Platform
	var webPlatform *web.Adapter
	if cfg.Telegram != nil {
		p, err := telegram.New(*cfg.Telegram, log.With("part", "telegram"))
		if err != nil {
			return fmt.Errorf("telegram: %w", err)
		}
		platforms = append(platforms, p)
	}
	if cfg.Discord != nil {
		p, err := discord.New(*cfg.Discord, log.With("part", "discord"))
		if err != nil {
			return fmt.Errorf("discord: %w", err)
		}
		platforms = append(platforms, p)
	}
	if cfg.Matrix != nil {
		p, err := matrix.New(*cfg.Matrix, log.With("part", "matrix"))
		if err != nil {
			return fmt.Errorf("matrix: %w", err)
		}
		platforms = append(platforms, p)
	}
	if cfg.webEnabled() {
		var opts []web.Option
		if dev != nil {
			opts = append(opts, web.WithSimulatedPayments(dev.Pay))
		}
		p, err := web.New(*cfg.Web, log.With("part", "web"), opts...)
		if err != nil {
			return fmt.Errorf("web: %w", err)
		}
		webPlatform = p
		platforms = append(platforms, p)
	}

	b, err := bridge.New(cfg.Rooms, pay, log.With("part", "bridge"), platforms...)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           httpHandler(b, webPlatform),
		ReadHeaderTimeout: 10 * time.Second,
		// No ReadTimeout/WriteTimeout: the web chat's WebSockets set their own deadlines per frame.
		ErrorLog: slog.NewLogLogger(log.With("part", "http").Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String()
	if configPath == "" {
		fmt.Fprintf(stdout, "kumo is running on its built-in defaults: open %s to create a room (development payments, no real money).\n", url)
		fmt.Fprintln(stdout, "To connect Telegram, Discord, Matrix and a real lnd node, copy config.example.yaml to config.yaml and fill it in (see README.md).")
	} else {
		fmt.Fprintf(stdout, "kumo is running with %s; health and metrics on %s/healthz and %s/metrics.\n", configPath, url, url)
		if webPlatform != nil {
			fmt.Fprintf(stdout, "Web chat: %s\n", url)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		// The bridge outlives ctx long enough to tell members their rooms are gone.
		err := b.Run(gctx)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return err
	})
	err = g.Wait()
	log.Info("kumo stopped")
	return err
}

// httpHandler serves /healthz, /metrics and, when enabled, the web chat.
func httpHandler(b *bridge.Bridge, w *web.Adapter) http.Handler {
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
	counter("kumo_messages_relayed_total", "Member messages relayed to their room.", func(s bridge.Stats) float64 { return float64(s.Relayed) })
	counter("kumo_deliveries_total", "Messages delivered to a person.", func(s bridge.Stats) float64 { return float64(s.Delivered) })
	counter("kumo_deliveries_failed_total", "Messages that could not be delivered after retries.", func(s bridge.Stats) float64 { return float64(s.DeliveriesFailed) })
	counter("kumo_invoices_created_total", "Invoices created for new rooms.", func(s bridge.Stats) float64 { return float64(s.InvoicesCreated) })
	counter("kumo_invoices_paid_total", "Invoices paid.", func(s bridge.Stats) float64 { return float64(s.InvoicesPaid) })
	counter("kumo_invoices_expired_total", "Invoices that expired unpaid.", func(s bridge.Stats) float64 { return float64(s.InvoicesExpired) })

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(rw, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if w != nil {
		mux.Handle("/", w.Handler())
	}
	return mux
}
