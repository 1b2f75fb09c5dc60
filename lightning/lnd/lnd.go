// Package lnd is kumo's payment backend on the operator's own lnd node: hold invoices through lnrpc and
// lnrpc/invoicesrpc over gRPC. It implements bridge.Payments.
//
// The flow: CreateInvoice makes a random preimage, which never leaves this process, and adds a hold
// invoice for its hash. When the payer's HTLC arrives lnd marks the invoice ACCEPTED (the money is
// locked, not yet taken) and Run reports bridge.PaymentAccepted; the bridge opens the room and only
// then calls Settle, or calls Cancel and the payer's HTLC is released at once.
//
// A kumo that restarts has lost its preimages by design, so its open and accepted invoices can never
// be settled: Run cancels them at start, and nobody is left having paid for nothing. It recognises
// them by its instance tag in their memo (Config.Instance), so several kumo deployments can share
// one lnd node without cancelling each other's invoices.
package lnd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning"
)

// Memo is the description of every invoice of the kumo whose instance tag is instance, as wallets
// show it: "kumo room · <instance>". It is also how a restarted kumo recognises its own invoices, so
// it is made here rather than taken from the request (InvoiceRequest.Memo is ignored). It never says
// anything about the room.
func Memo(instance string) string { return memoPrefix + instance }

// memoPrefix starts every tagged memo; legacyMemo is the whole memo of kumo versions from before
// instance tags, which ran one kumo per lnd node.
const (
	memoPrefix = legacyMemo + " · "
	legacyMemo = "kumo room"
)

// instanceRE is what an instance tag may be: short and plain, since every payer's wallet shows it.
// It has no room for a token or a macaroon (longer, and with ':' or other punctuation).
var instanceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,23}$`)

// DefaultInstance derives an instance tag from identities that stay the same across restarts of one
// deployment and differ between deployments (kumo passes its bots' public ids). The tag is "k" and
// 10 hex digits of their SHA-256: it tells deployments apart without showing what they are.
func DefaultInstance(identities ...string) string {
	h := sha256.New()
	for _, id := range identities {
		h.Write([]byte(id))
		h.Write([]byte{0}) // so that ("ab", "c") and ("a", "bc") differ
	}
	return "k" + hex.EncodeToString(h.Sum(nil))[:10]
}

// Permissions is everything kumo's macaroon needs: invoices (add, look up, list, subscribe, settle,
// cancel) and info:read for the start-up check (GetInfo).
var Permissions = []string{"invoices:read", "invoices:write", "info:read"}

// BakeMacaroonCommand is the lncli line that bakes a macaroon with exactly Permissions; point
// lightning.lnd.macaroon at the file it writes. (lncli takes options before the permissions only;
// the tests run this very line.)
const BakeMacaroonCommand = "lncli bakemacaroon --save_to kumo.macaroon invoices:read invoices:write info:read"

// Config is the `lightning.lnd` section of kumo's configuration.
type Config struct {
	// Address is host:port of lnd's gRPC interface (lnd's rpclisten, 10009 by default).
	Address string `yaml:"address"`
	// TLSCert is the path of lnd's tls.cert; "~/" expands to the home directory.
	TLSCert string `yaml:"tls_cert"`
	// Macaroon is the path of a macaroon with Permissions (see BakeMacaroonCommand); "~/" expands.
	Macaroon string `yaml:"macaroon" env:"KUMO_LND_MACAROON"`
	// Instance tags this deployment's invoices (their memo is Memo(Instance)): a restarted kumo
	// cancels the leftovers with its own tag and leaves other deployments' alone. It must stay the
	// same across restarts and differ between deployments on one lnd node; 1 to 24 letters, digits,
	// '.', '_' or '-', and never a secret, as payers' wallets show it. Required here; kumo fills it
	// from its configuration when the file leaves it out (see DefaultInstance).
	Instance string `yaml:"instance" env:"KUMO_LND_INSTANCE"`
}

// Validate names every key that is missing or wrong. It does not echo the instance tag back, in
// case someone put a secret there.
func (c Config) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("lightning.lnd.address is empty: set it to host:port of lnd's gRPC, e.g. 127.0.0.1:10009"))
	}
	if c.TLSCert == "" {
		errs = append(errs, errors.New("lightning.lnd.tls_cert is empty: set it to the path of lnd's tls.cert, e.g. ~/.lnd/tls.cert"))
	}
	if c.Macaroon == "" {
		errs = append(errs, errors.New("lightning.lnd.macaroon is empty: set it to the path of a macaroon made with: "+BakeMacaroonCommand))
	}
	if !instanceRE.MatchString(c.Instance) {
		errs = append(errs, fmt.Errorf("lightning.lnd.instance must be 1 to 24 letters, digits, '.', '_' or '-', starting with a letter or digit (got %d characters); wallets show it, so never a secret", len(c.Instance)))
	}
	return errors.Join(errs...)
}

// ErrUnknownInvoice is returned by Settle for an invoice this process did not create (or created
// before a restart): without the preimage it cannot be settled.
var ErrUnknownInvoice = errors.New("lnd: invoice not created by this kumo process")

// Backend is a bridge.Payments on one lnd node.
type Backend struct {
	log  *slog.Logger
	addr string
	memo string // Memo(Config.Instance)
	conn *grpc.ClientConn
	ln   lnrpc.LightningClient
	inv  invoicesrpc.InvoicesClient
	node NodeInfo

	// retryMin and retryMax bound the pause before resubscribing to a dropped invoice stream.
	retryMin, retryMax time.Duration
	// rpcTimeout bounds single calls kumo makes on its own (start-up check, reconciliation).
	rpcTimeout time.Duration

	mu       sync.Mutex
	invoices map[string]*invoice // by ID (payment hash, hex)
	// watch starts following an invoice; set only while Run runs.
	watch func(*invoice)
}

// invoice is what kumo keeps about one hold invoice, in memory only.
type invoice struct {
	id       string
	hash     []byte
	preimage []byte // nil once settled or cancelled
	expires  time.Time
	accepted bool // PaymentAccepted was reported
	final    bool // settled or cancelled: nothing more to watch or report
	settled  bool
	doneAt   time.Time
}

// NodeInfo is what the start-up check learnt about the node.
type NodeInfo struct {
	Alias, Pubkey, Version string
	// Network is "mainnet", "testnet", "testnet4", "signet", "regtest" or "simnet".
	Network     string
	BlockHeight uint32
}

// New connects to lnd and checks it: reachable with this certificate and macaroon, synced to the
// chain, and able to make hold invoices. Its errors say what to fix.
//
// cfg must be valid; a nil log discards.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	certPath, err := expandHome(cfg.TLSCert)
	if err != nil {
		return nil, err
	}
	macPath, err := expandHome(cfg.Macaroon)
	if err != nil {
		return nil, err
	}
	creds, err := credentials.NewClientTLSFromFile(certPath, "")
	if err != nil {
		return nil, fmt.Errorf("lnd: reading tls_cert %s: %w", certPath, err)
	}
	mac, err := os.ReadFile(macPath)
	if err != nil {
		return nil, fmt.Errorf("lnd: reading macaroon %s: %w", macPath, err)
	}
	conn, err := grpc.NewClient(cfg.Address,
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(macaroonCred(hex.EncodeToString(mac))),
		// gRPC's default reconnect backoff grows to two minutes; after an lnd restart kumo should be
		// taking payments again within seconds.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("lnd: address %q: %w", cfg.Address, err)
	}
	b := &Backend{
		log:        log,
		addr:       cfg.Address,
		memo:       Memo(cfg.Instance),
		conn:       conn,
		ln:         lnrpc.NewLightningClient(conn),
		inv:        invoicesrpc.NewInvoicesClient(conn),
		retryMin:   250 * time.Millisecond,
		retryMax:   5 * time.Second,
		rpcTimeout: 15 * time.Second,
		invoices:   make(map[string]*invoice),
	}
	if err := b.check(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	log.Info("lnd connected", "address", cfg.Address, "alias", b.node.Alias, "network", b.node.Network,
		"version", b.node.Version, "height", b.node.BlockHeight, "instance", cfg.Instance)
	return b, nil
}

// check is the start-up check of New.
func (b *Backend) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
	defer cancel()
	info, err := b.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	if err != nil {
		switch {
		case macaroonRefused(err):
			return fmt.Errorf("lnd: lnd at %s refused the macaroon (kumo needs %s; bake one with %q): %w",
				b.addr, strings.Join(Permissions, " "), BakeMacaroonCommand, err)
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded:
			return fmt.Errorf("lnd: cannot reach lnd at %s (is it running, is the address its rpclisten, is tls_cert its tls.cert?): %w", b.addr, err)
		case codes.Unknown:
			// lnd answers Unknown while the wallet is locked or the server is still starting.
			return fmt.Errorf("lnd: lnd at %s is not ready (wallet locked or still starting?): %w", b.addr, err)
		}
		return fmt.Errorf("lnd: GetInfo from %s: %w", b.addr, err)
	}
	b.node = NodeInfo{Alias: info.Alias, Pubkey: info.IdentityPubkey, Version: info.Version, BlockHeight: info.BlockHeight}
	// lnd runs on bitcoin only now: Chains has one entry, whose network is what matters.
	for _, c := range info.Chains {
		b.node.Network = c.Network
	}
	if b.node.Network == "" {
		return fmt.Errorf("lnd: lnd at %s does not say which network it is on", b.addr)
	}
	if !info.SyncedToChain {
		return fmt.Errorf("lnd: lnd at %s (%s) is not synced to the chain yet (at height %d): start kumo again once it is",
			b.addr, b.node.Network, info.BlockHeight)
	}
	// Hold invoices live in the invoicesrpc sub-server, which lnd has only when built with the
	// invoicesrpc tag (release builds are). Looking up an unknown hash tells whether it is there
	// and whether the macaroon may read invoices, without touching anything.
	probe := make([]byte, 32)
	_, _ = rand.Read(probe)
	_, err = b.inv.LookupInvoiceV2(ctx, &invoicesrpc.LookupInvoiceMsg{
		InvoiceRef: &invoicesrpc.LookupInvoiceMsg_PaymentHash{PaymentHash: probe},
	})
	if macaroonRefused(err) {
		return fmt.Errorf("lnd: the macaroon may not read invoices (kumo needs %s; bake one with %q): %w",
			strings.Join(Permissions, " "), BakeMacaroonCommand, err)
	}
	switch status.Code(err) {
	case codes.Unimplemented:
		return fmt.Errorf("lnd: lnd at %s has no invoices RPC (built without the invoicesrpc tag?); kumo needs hold invoices: %w", b.addr, err)
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("lnd: lost lnd at %s during the start-up check: %w", b.addr, err)
	}
	return nil
}

// macaroonRefused tells lnd's macaroon errors apart: lnd reports them with code Unknown and a
// message ("permission denied", "verification failed: signature mismatch...", "cannot get macaroon").
func macaroonRefused(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return true
	case codes.Unknown:
		msg := status.Convert(err).Message()
		for _, s := range []string{"permission denied", "verification failed", "macaroon"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
	}
	return false
}

// Node is what the start-up check found.
func (b *Backend) Node() NodeInfo { return b.node }

// Close ends the connection to lnd. Call it after Run has returned.
func (b *Backend) Close() error { return b.conn.Close() }

// CreateInvoice adds a hold invoice for req.AmountSat that expires after req.Expiry.
func (b *Backend) CreateInvoice(ctx context.Context, req bridge.InvoiceRequest) (bridge.Invoice, error) {
	if req.AmountSat <= 0 {
		return bridge.Invoice{}, fmt.Errorf("lnd: invoice amount %d sat", req.AmountSat)
	}
	expiry := int64((req.Expiry + time.Second - 1) / time.Second)
	if expiry < 1 {
		return bridge.Invoice{}, fmt.Errorf("lnd: invoice expiry %s", req.Expiry)
	}
	preimage := make([]byte, 32)
	if _, err := rand.Read(preimage); err != nil {
		return bridge.Invoice{}, fmt.Errorf("lnd: preimage: %w", err)
	}
	hash := sha256.Sum256(preimage)
	now := time.Now()
	inv := &invoice{id: hex.EncodeToString(hash[:]), hash: hash[:], preimage: preimage,
		expires: now.Add(time.Duration(expiry) * time.Second)}

	// Known before lnd has it, so that the start-up clean-up of a concurrent Run never takes it for
	// a previous process's invoice.
	b.mu.Lock()
	b.prune(now)
	b.invoices[inv.id] = inv
	b.mu.Unlock()

	resp, err := b.inv.AddHoldInvoice(ctx, &invoicesrpc.AddHoldInvoiceRequest{
		Memo: b.memo, Hash: inv.hash, Value: req.AmountSat, Expiry: expiry,
	})
	if err != nil {
		b.mu.Lock()
		delete(b.invoices, inv.id)
		b.mu.Unlock()
		// Whatever went wrong, the person asking for a room can only be told to try later.
		return bridge.Invoice{}, fmt.Errorf("lnd: add hold invoice: %w: %w", bridge.ErrPaymentsUnavailable, err)
	}
	// The invoice exists now; if it cannot be shown, make it unpayable rather than leave it open.
	drop := func(err error) (bridge.Invoice, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.rpcTimeout)
		defer cancel()
		_ = b.Cancel(cctx, inv.id)
		return bridge.Invoice{}, err
	}
	uri := "lightning:" + resp.PaymentRequest
	qr, err := lightning.QRCode(uri)
	if err != nil {
		return drop(fmt.Errorf("lnd: %w", err))
	}
	// An lnd so slow that the invoice is (nearly) expired when it comes back would have its
	// expiry reported before the bridge even knows the invoice, and the person never told.
	if time.Until(inv.expires) < minValidity {
		return drop(fmt.Errorf("lnd: adding the invoice took %s, it expires in %s: %w",
			time.Since(now).Round(time.Millisecond), time.Until(inv.expires).Round(time.Millisecond), bridge.ErrPaymentsUnavailable))
	}
	b.mu.Lock()
	if b.watch != nil {
		b.watch(inv)
	}
	b.mu.Unlock()
	return bridge.Invoice{
		ID: inv.id, BOLT11: resp.PaymentRequest, URI: uri, AmountSat: req.AmountSat,
		ExpiresAt: inv.expires, QR: qr,
	}, nil
}

// minValidity is the least time to pay an invoice must still have when CreateInvoice returns it.
const minValidity = time.Second

// forgetAfter is how long a finished invoice is remembered, so that late Settle/Cancel calls and
// replayed updates stay no-ops.
const forgetAfter = time.Hour

// prune drops invoices that are long finished or long expired unpaid. b.mu is held.
func (b *Backend) prune(now time.Time) {
	for id, inv := range b.invoices {
		if (inv.final && now.Sub(inv.doneAt) > forgetAfter) || (!inv.accepted && now.Sub(inv.expires) > forgetAfter) {
			delete(b.invoices, id)
		}
	}
}

// Settle takes the payment of an accepted invoice with the preimage only this process knows.
func (b *Backend) Settle(ctx context.Context, id string) error {
	b.mu.Lock()
	inv := b.invoices[id]
	var preimage []byte
	settled := false
	if inv != nil {
		preimage, settled = inv.preimage, inv.settled
	}
	b.mu.Unlock()
	switch {
	case inv == nil:
		return fmt.Errorf("settle %s: %w", short(id), ErrUnknownInvoice)
	case settled:
		return nil
	case preimage == nil:
		return fmt.Errorf("lnd: settle %s: the invoice was cancelled", short(id))
	}
	// lnd answers success for an invoice that is already settled.
	if _, err := b.inv.SettleInvoice(ctx, &invoicesrpc.SettleInvoiceMsg{Preimage: preimage}); err != nil {
		return fmt.Errorf("lnd: settle %s: %w", short(id), err)
	}
	b.mu.Lock()
	inv.settled, inv.final, inv.preimage, inv.doneAt = true, true, nil, time.Now()
	b.mu.Unlock()
	return nil
}

// Cancel releases the payer's HTLC, or makes an unpaid invoice unpayable. lnd answers success for an
// invoice that is already cancelled. It works for invoices of a previous process too.
func (b *Backend) Cancel(ctx context.Context, id string) error {
	hash, err := hex.DecodeString(id)
	if err != nil || len(hash) != sha256.Size {
		return fmt.Errorf("lnd: cancel: %q is not a payment hash", short(id))
	}
	if _, err := b.inv.CancelInvoice(ctx, &invoicesrpc.CancelInvoiceMsg{PaymentHash: hash}); err != nil {
		return fmt.Errorf("lnd: cancel %s: %w", short(id), err)
	}
	b.mu.Lock()
	if inv := b.invoices[id]; inv != nil && !inv.final {
		// Final here so that lnd's CANCELED update is not reported back to the bridge as news.
		inv.final, inv.preimage, inv.doneAt = true, nil, time.Now()
	}
	b.mu.Unlock()
	return nil
}

// Run cancels the invoices a previous kumo process left behind, then watches this process's
// invoices and reports their changes until ctx ends. Losing lnd is not an error: Run keeps trying
// and reconciles when it is back. It returns nil when ctx ends.
func (b *Backend) Run(ctx context.Context, notify func(bridge.PaymentEvent)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	b.mu.Lock()
	if b.watch != nil {
		b.mu.Unlock()
		return errors.New("lnd: Run is already running")
	}
	// wg.Add only ever happens under b.mu while watch is set, so none can race wg.Wait below.
	b.watch = func(inv *invoice) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.follow(ctx, inv, notify)
		}()
	}
	for _, inv := range b.invoices {
		if !inv.final {
			b.watch(inv)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.retry(ctx, "cancelling a previous run's invoices", b.cancelLeftovers)
	}()
	b.mu.Unlock()

	<-ctx.Done()
	b.mu.Lock()
	b.watch = nil
	b.mu.Unlock()
	wg.Wait()
	return nil
}

// retry calls f until it succeeds or ctx ends, pausing with exponential backoff in between.
func (b *Backend) retry(ctx context.Context, what string, f func(context.Context) (progressed bool, err error)) {
	wait := b.retryMin
	for {
		progressed, err := f(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if progressed {
			wait = b.retryMin
		}
		// One warning per outage, not one per attempt.
		level := slog.LevelDebug
		if wait == b.retryMin {
			level = slog.LevelWarn
		}
		b.log.Log(ctx, level, "lnd: "+what+" failed, retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, b.retryMax)
	}
}

// cancelLeftovers cancels this deployment's hold invoices that this process does not know: they
// were made by a previous process of it, whose preimages died with it. Accepted ones hold a payer's
// money for a room that will never open; open ones could still be paid into that same trap.
//
// Its own are those whose memo carries its instance tag, plus those with the bare legacy memo of
// kumo versions from before tags: those versions ran alone on their lnd node, so a legacy invoice
// can only be a leftover of a kumo that has since been upgraded and restarted, and nobody else will
// ever release it. Other deployments' invoices (other tags) are theirs to clean up; they are only
// counted, so that an operator who changed the tag can see what the old one left.
func (b *Backend) cancelLeftovers(ctx context.Context) (bool, error) {
	var offset uint64
	cancelled := 0
	others := map[string]int{} // instance tag -> pending invoices of that other deployment
	for {
		lctx, lcancel := context.WithTimeout(ctx, b.rpcTimeout)
		resp, err := b.ln.ListInvoices(lctx, &lnrpc.ListInvoiceRequest{PendingOnly: true, IndexOffset: offset, NumMaxInvoices: 200})
		lcancel()
		if err != nil {
			return cancelled > 0, fmt.Errorf("list invoices: %w", err)
		}
		for _, inv := range resp.Invoices {
			// A hold invoice has no preimage in lnd until it is settled; kumo never adds others.
			if len(inv.RPreimage) != 0 || (inv.State != lnrpc.Invoice_OPEN && inv.State != lnrpc.Invoice_ACCEPTED) {
				continue
			}
			if inv.Memo != b.memo && inv.Memo != legacyMemo {
				if tag, ok := strings.CutPrefix(inv.Memo, memoPrefix); ok {
					others[tag]++
				}
				continue
			}
			id := hex.EncodeToString(inv.RHash)
			b.mu.Lock()
			_, ours := b.invoices[id]
			b.mu.Unlock()
			if ours {
				continue
			}
			cctx, ccancel := context.WithTimeout(ctx, b.rpcTimeout)
			err := b.Cancel(cctx, id)
			ccancel()
			if err != nil {
				return cancelled > 0, err
			}
			cancelled++
			b.log.Info("lnd: cancelled an invoice of a previous run", "invoice", short(id), "was", inv.State.String(),
				"legacy", inv.Memo == legacyMemo)
		}
		if len(resp.Invoices) == 0 || resp.LastIndexOffset <= offset {
			break
		}
		offset = resp.LastIndexOffset
	}
	if len(others) > 0 {
		// Tags are public (every payer's wallet shows them), so naming them is safe.
		b.log.Info("lnd: left other kumo deployments' pending invoices alone", "by_instance", others)
	}
	// Always said, also when there was nothing to do: it marks the end of the clean-up.
	b.log.Info("lnd: start-up clean-up done", "cancelled", cancelled)
	return true, nil
}

// follow watches one invoice until it is settled or cancelled, or ctx ends. When the stream
// drops (lnd restarting, network) it resubscribes with backoff; every subscription starts with the
// invoice's current state, so a payment made while the stream was down is reported then.
func (b *Backend) follow(ctx context.Context, inv *invoice, notify func(bridge.PaymentEvent)) {
	b.retry(ctx, "watching invoice "+short(inv.id), func(ctx context.Context) (bool, error) {
		return b.subscribe(ctx, inv, notify)
	})
}

func (b *Backend) subscribe(ctx context.Context, inv *invoice, notify func(bridge.PaymentEvent)) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// WaitForReady: while lnd is away the call waits for the connection instead of failing at once.
	stream, err := b.inv.SubscribeSingleInvoice(ctx, &invoicesrpc.SubscribeSingleInvoiceRequest{RHash: inv.hash}, grpc.WaitForReady(true))
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	// lnd sends the current state first on every subscription (even one made before AddHoldInvoice
	// returned), so nothing that happened while the stream was down is lost. Looking the invoice up
	// as well makes that explicit and does not depend on it.
	lctx, lcancel := context.WithTimeout(ctx, b.rpcTimeout)
	cur, err := b.ln.LookupInvoice(lctx, &lnrpc.PaymentHash{RHash: inv.hash})
	lcancel()
	if err != nil {
		return false, fmt.Errorf("look up: %w", err)
	}
	if b.apply(inv, cur.State, notify) {
		return true, nil
	}
	for {
		up, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			return true, fmt.Errorf("stream: %w", err)
		}
		if b.apply(inv, up.State, notify) {
			return true, nil
		}
	}
}

// apply records a state lnd reported and tells the bridge what is news to it: an invoice is
// reported accepted at most once, and cancelled at most once and only if kumo did not cancel it
// itself. It returns whether the invoice is finished.
func (b *Backend) apply(inv *invoice, state lnrpc.Invoice_InvoiceState, notify func(bridge.PaymentEvent)) bool {
	b.mu.Lock()
	var ev bridge.PaymentState
	switch state {
	case lnrpc.Invoice_ACCEPTED:
		if !inv.accepted && !inv.final {
			inv.accepted = true
			ev = bridge.PaymentAccepted
		}
	case lnrpc.Invoice_CANCELED:
		if !inv.final {
			inv.final, inv.preimage, inv.doneAt = true, nil, time.Now()
			ev = bridge.PaymentCanceled
		}
	case lnrpc.Invoice_SETTLED:
		if !inv.final {
			inv.settled, inv.final, inv.preimage, inv.doneAt = true, true, nil, time.Now()
		}
	}
	final := inv.final
	b.mu.Unlock()
	if ev != 0 {
		b.log.Debug("lnd: invoice update", "invoice", short(inv.id), "state", ev.String())
		notify(bridge.PaymentEvent{ID: inv.id, State: ev})
	}
	return final
}

// macaroonCred sends the macaroon, hex, in the metadata header lnd reads.
type macaroonCred string

func (m macaroonCred) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"macaroon": string(m)}, nil
}

func (macaroonCred) RequireTransportSecurity() bool { return true }

func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("lnd: expanding %s: %w", p, err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
