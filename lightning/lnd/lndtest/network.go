// Package lndtest runs a real Lightning network on one machine for tests: a regtest btcd and two lnd
// nodes on 127.0.0.1, "kumo" (the operator's node, which receives) and "payer" (a user's wallet),
// joined by a funded, active channel from the payer to kumo. Start it once per test package in
// TestMain (it takes about 15 s); the binaries come from the tools cache and are built by
// .ci/tools.sh when missing.
package lndtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// ChannelSat is the capacity of the payer's channel to kumo; all of it starts on the payer's side.
const ChannelSat = 1_000_000

// segwitHeight is where segwit (and so channel funding) activates on regtest.
const segwitHeight = 432

// Network is btcd plus the two nodes.
type Network struct {
	Bins  Binaries
	Kumo  *Node
	Payer *Node
	chain *btcd
	dir   string

	mu sync.Mutex // serialises RestartKumo and other node changes against helpers
}

// Start builds (if needed) and starts the network in dir (a directory the caller removes), and
// returns once the payer can pay kumo. On error, whatever was started is stopped again.
func Start(ctx context.Context, dir string) (*Network, error) {
	return startPicking(ctx, dir, freePort)
}

// startPicking is Start with the ports from pick.
func startPicking(ctx context.Context, dir string, pick func() (int, error)) (*Network, error) {
	bins, err := FindBinaries(ctx)
	if err != nil {
		return nil, err
	}
	// The ports are picked free, but other programs on the machine (other test runs) may take one
	// before btcd or lnd binds it: then start over on new ports, in a fresh directory.
	for attempt := 0; ; attempt++ {
		d := dir
		if attempt > 0 {
			d = filepath.Join(dir, fmt.Sprintf("retry%d", attempt))
		}
		n, err := start(ctx, bins, d, pick)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			return n, err
		}
	}
}

func start(ctx context.Context, bins Binaries, dir string, pick func() (int, error)) (_ *Network, err error) {
	n := &Network{Bins: bins, dir: dir}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	ports := make([]int, 6)
	for i := range ports {
		if ports[i], err = pick(); err != nil {
			return nil, fmt.Errorf("lndtest: free port: %w", err)
		}
	}
	n.chain = &btcd{bin: bins.Btcd, dir: filepath.Join(dir, "btcd"), rpcPort: ports[0], p2pPort: ports[1]}
	n.Kumo = &Node{Name: "kumo", bin: bins.Lnd, dir: filepath.Join(dir, "kumo"), chain: n.chain,
		RPCAddr: fmt.Sprintf("127.0.0.1:%d", ports[2]), P2PAddr: fmt.Sprintf("127.0.0.1:%d", ports[3])}
	n.Payer = &Node{Name: "payer", bin: bins.Lnd, dir: filepath.Join(dir, "payer"), chain: n.chain,
		RPCAddr: fmt.Sprintf("127.0.0.1:%d", ports[4]), P2PAddr: fmt.Sprintf("127.0.0.1:%d", ports[5])}
	for _, d := range []string{n.chain.dir, n.Kumo.dir, n.Payer.dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}

	// btcd has no wallet and mines only to an address given at start, and the coins must be the
	// payer's: so btcd starts once without one, the nodes start, and btcd restarts mining to the
	// payer's address. The restart wipes the regtest chain, which holds nothing yet.
	if err := n.chain.start(ctx, ""); err != nil {
		return nil, err
	}
	if err := startBoth(ctx, n.Kumo, n.Payer); err != nil {
		return nil, err
	}
	var addr *lnrpc.NewAddressResponse
	err = poll(ctx, 30*time.Second, func() error {
		addr, err = n.Payer.ln.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lndtest: payer address: %w", err)
	}
	n.chain.proc.stop()
	if err := n.chain.start(ctx, addr.Address); err != nil {
		return nil, err
	}
	if _, err := n.chain.generate(ctx, segwitHeight); err != nil {
		return nil, fmt.Errorf("lndtest: mining to segwit activation: %w", err)
	}
	if err := n.waitActive(ctx); err != nil {
		return nil, err
	}
	if err := n.waitSynced(ctx, segwitHeight); err != nil {
		return nil, err
	}
	err = poll(ctx, 30*time.Second, func() error {
		bal, err := n.Payer.ln.WalletBalance(ctx, &lnrpc.WalletBalanceRequest{})
		if err != nil {
			return err
		}
		if bal.ConfirmedBalance < 2*ChannelSat {
			return fmt.Errorf("payer has %d sat confirmed", bal.ConfirmedBalance)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lndtest: payer's coins: %w", err)
	}
	if err := n.connectPayer(ctx); err != nil {
		return nil, err
	}
	if _, err := n.Payer.ln.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
		NodePubkey: mustHex(n.Kumo.pubkey), LocalFundingAmount: ChannelSat,
	}); err != nil {
		return nil, fmt.Errorf("lndtest: opening the channel: %w", err)
	}
	err = poll(ctx, 30*time.Second, func() error {
		size, err := n.chain.mempoolSize(ctx)
		if err == nil && size == 0 {
			err = errors.New("funding transaction not in the mempool")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lndtest: funding: %w", err)
	}
	if _, err := n.chain.generate(ctx, 6); err != nil {
		return nil, err
	}
	if err := n.waitChannel(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

func startBoth(ctx context.Context, a, b *Node) error {
	errs := make(chan error, 2)
	for _, n := range []*Node{a, b} {
		go func() { errs <- n.start(ctx, true) }()
	}
	return errors.Join(<-errs, <-errs)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Stop ends every process. It is safe on a half-started network.
func (n *Network) Stop() {
	for _, node := range []*Node{n.Kumo, n.Payer} {
		if node != nil && node.proc != nil {
			node.stop()
		}
	}
	if n.chain != nil {
		n.chain.proc.stop()
	}
}

// waitActive waits until both nodes are fully started.
func (n *Network) waitActive(ctx context.Context) error {
	for _, node := range []*Node{n.Kumo, n.Payer} {
		err := poll(ctx, 60*time.Second, func() error {
			st, err := lnrpc.NewStateClient(node.conn).GetState(ctx, &lnrpc.GetStateRequest{})
			if err != nil {
				return err
			}
			if st.State != lnrpc.WalletState_SERVER_ACTIVE {
				return fmt.Errorf("lnd %s is %s", node.Name, st.State)
			}
			info, err := node.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
			if err != nil {
				return err
			}
			node.pubkey = info.IdentityPubkey
			return nil
		})
		if err != nil {
			return fmt.Errorf("lndtest: %w (log: %s)", err, node.logTail())
		}
	}
	return nil
}

// waitSynced waits until both nodes see at least height and say they are synced.
func (n *Network) waitSynced(ctx context.Context, height uint32) error {
	for _, node := range []*Node{n.Kumo, n.Payer} {
		err := poll(ctx, 60*time.Second, func() error {
			info, err := node.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
			if err != nil {
				return err
			}
			if info.BlockHeight < height || !info.SyncedToChain {
				return fmt.Errorf("%s at height %d (want %d), synced %v", node.Name, info.BlockHeight, height, info.SyncedToChain)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("lndtest: sync: %w", err)
		}
	}
	return nil
}

func (n *Network) connectPayer(ctx context.Context) error {
	_, err := n.Payer.ln.ConnectPeer(ctx, &lnrpc.ConnectPeerRequest{
		Addr: &lnrpc.LightningAddress{Pubkey: n.Kumo.pubkey, Host: n.Kumo.P2PAddr},
	})
	if err != nil && !strings.Contains(err.Error(), "already connected") {
		return fmt.Errorf("lndtest: payer connecting to kumo: %w", err)
	}
	return nil
}

// waitChannel waits until the channel is active on both sides and its edge, with both policies, is
// in the payer's graph: "active" alone is not enough to find a route.
func (n *Network) waitChannel(ctx context.Context) error {
	start := time.Now()
	lastKick := start
	err := poll(ctx, 60*time.Second, func() error {
		for _, node := range []*Node{n.Payer, n.Kumo} {
			chans, err := node.ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{ActiveOnly: true})
			if err != nil {
				return err
			}
			if len(chans.Channels) != 1 {
				// After kumo's node restarts, the payer sometimes keeps a dead connection ("already
				// connected") or waits out a long reconnect backoff, and the channel stays inactive
				// for minutes. Reconnecting by hand every few seconds is what an operator would do.
				if time.Since(lastKick) > 5*time.Second {
					lastKick = time.Now()
					_, _ = n.Payer.ln.DisconnectPeer(ctx, &lnrpc.DisconnectPeerRequest{PubKey: n.Kumo.pubkey})
					if err := n.connectPayer(ctx); err != nil {
						return err
					}
				}
				return fmt.Errorf("%s has %d active channels", node.Name, len(chans.Channels))
			}
		}
		chans, _ := n.Payer.ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{ActiveOnly: true})
		edge, err := n.Payer.ln.GetChanInfo(ctx, &lnrpc.ChanInfoRequest{ChanId: chans.Channels[0].ChanId})
		if err != nil {
			return fmt.Errorf("edge not in the payer's graph: %w", err)
		}
		if edge.Node1Policy == nil || edge.Node2Policy == nil || edge.Node1Policy.Disabled || edge.Node2Policy.Disabled {
			return errors.New("edge policies missing or disabled in the payer's graph")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lndtest: channel: %w", err)
	}
	return nil
}

// Mine mines blocks and waits until both nodes have seen them.
func (n *Network) Mine(ctx context.Context, blocks int) error {
	info, err := n.Payer.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	if err != nil {
		return err
	}
	if _, err := n.chain.generate(ctx, blocks); err != nil {
		return err
	}
	return n.waitSynced(ctx, info.BlockHeight+uint32(blocks))
}

// StopKumo shuts kumo's lnd down cleanly; StartKumo brings it back on the same ports and data.
func (n *Network) StopKumo() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Kumo.stop()
}

// StartKumo starts kumo's lnd again after StopKumo and waits until the payer can pay it again.
func (n *Network) StartKumo(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.Kumo.start(ctx, false); err != nil {
		return err
	}
	// A fresh block keeps both nodes' view of the chain recent (lnd is only "synced" when the best
	// block is under two hours old) and proves the restarted node follows the chain.
	if err := n.Mine(ctx, 1); err != nil {
		return err
	}
	if err := n.connectPayer(ctx); err != nil {
		return err
	}
	return n.waitChannel(ctx)
}

// RestartKumo is StopKumo then StartKumo.
func (n *Network) RestartKumo(ctx context.Context) error {
	n.StopKumo()
	return n.StartKumo(ctx)
}

// BakeKumoMacaroon bakes a macaroon on kumo's node with exactly the given permissions
// ("invoices:read", ...) into the network directory and returns its path.
func (n *Network) BakeKumoMacaroon(ctx context.Context, name string, perms ...string) (string, error) {
	req := &lnrpc.BakeMacaroonRequest{}
	for _, p := range perms {
		entity, action, ok := strings.Cut(p, ":")
		if !ok {
			return "", fmt.Errorf("lndtest: permission %q is not entity:action", p)
		}
		req.Permissions = append(req.Permissions, &lnrpc.MacaroonPermission{Entity: entity, Action: action})
	}
	resp, err := n.Kumo.ln.BakeMacaroon(ctx, req)
	if err != nil {
		return "", fmt.Errorf("lndtest: bake macaroon: %w", err)
	}
	mac, err := hex.DecodeString(resp.Macaroon)
	if err != nil {
		return "", err
	}
	path := filepath.Join(n.dir, name+".macaroon")
	return path, os.WriteFile(path, mac, 0o600)
}

// Invoice looks an invoice up on kumo's node by its payment hash (hex).
func (n *Network) Invoice(ctx context.Context, hashHex string) (*lnrpc.Invoice, error) {
	hash, err := hex.DecodeString(hashHex)
	if err != nil {
		return nil, err
	}
	inv, err := n.Kumo.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: hash})
	if err != nil {
		return nil, fmt.Errorf("lndtest: lookup invoice: %w", err)
	}
	return inv, nil
}

// InvoiceState looks an invoice up on kumo's node by its payment hash (hex).
func (n *Network) InvoiceState(ctx context.Context, hashHex string) (lnrpc.Invoice_InvoiceState, error) {
	inv, err := n.Invoice(ctx, hashHex)
	if err != nil {
		return 0, err
	}
	return inv.State, nil
}

// WaitInvoiceState polls kumo's node until the invoice is in state. An invoice that is settled or
// cancelled stays so: reaching the other final state fails at once rather than at the timeout.
func (n *Network) WaitInvoiceState(ctx context.Context, hashHex string, state lnrpc.Invoice_InvoiceState, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		got, err := n.InvoiceState(ctx, hashHex)
		if err != nil {
			return err
		}
		if got != state {
			err := fmt.Errorf("invoice is %s, want %s", got, state)
			if got == lnrpc.Invoice_SETTLED || got == lnrpc.Invoice_CANCELED {
				return errStop(err)
			}
			return err
		}
		return nil
	})
}

// CheckPaid checks from one payment's own records that it moved exactly sat from the payer to kumo:
// the payer's side succeeded, delivering sat for no fee (the channel is direct), and kumo's invoice
// is settled for sat. Unlike the payer's balance, this holds however many other payments run at the
// same time, so tests sharing the network in parallel can each check their own.
func (n *Network) CheckPaid(ctx context.Context, p *lnrpc.Payment, sat int64) error {
	if p.Status != lnrpc.Payment_SUCCEEDED || p.ValueSat != sat || p.FeeSat != 0 {
		return fmt.Errorf("lndtest: payment %s delivering %d sat for a fee of %d, want SUCCEEDED delivering %d for 0", p.Status, p.ValueSat, p.FeeSat, sat)
	}
	inv, err := n.Invoice(ctx, p.PaymentHash)
	if err != nil {
		return err
	}
	if inv.State != lnrpc.Invoice_SETTLED || inv.AmtPaidSat != sat {
		return fmt.Errorf("lndtest: kumo's invoice is %s with %d sat paid, want SETTLED with %d", inv.State, inv.AmtPaidSat, sat)
	}
	return nil
}

// CheckRefunded checks from one payment's own records that no money moved: the payer's payment
// failed with none of its attempts succeeded or still in flight, and kumo's invoice is cancelled
// with every HTLC it held released.
func (n *Network) CheckRefunded(ctx context.Context, p *lnrpc.Payment) error {
	if p.Status != lnrpc.Payment_FAILED {
		return fmt.Errorf("lndtest: payment %s, want FAILED", p.Status)
	}
	for _, h := range p.Htlcs {
		if h.Status != lnrpc.HTLCAttempt_FAILED {
			return fmt.Errorf("lndtest: a failed payment has an attempt %s", h.Status)
		}
	}
	inv, err := n.Invoice(ctx, p.PaymentHash)
	if err != nil {
		return err
	}
	if inv.State != lnrpc.Invoice_CANCELED {
		return fmt.Errorf("lndtest: kumo's invoice is %s, want CANCELED", inv.State)
	}
	for _, h := range inv.Htlcs {
		if h.State != lnrpc.InvoiceHTLCState_CANCELED {
			return fmt.Errorf("lndtest: kumo's cancelled invoice still has an HTLC %s", h.State)
		}
	}
	return nil
}

// PayerBalance is the payer's balance in the channel, in sat, once no HTLC is pending on its
// commitment: each pending HTLC adds an output whose fee the payer (the channel's funder) pays, so a
// balance read during a payment's commitment updates would be off by that fee.
func (n *Network) PayerBalance(ctx context.Context) (int64, error) {
	var bal int64
	err := poll(ctx, 20*time.Second, func() error {
		chans, err := n.Payer.ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
		if err != nil {
			return err
		}
		bal = 0
		for _, c := range chans.Channels {
			if len(c.PendingHtlcs) > 0 {
				return fmt.Errorf("%d HTLCs pending", len(c.PendingHtlcs))
			}
			bal += c.LocalBalance
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("lndtest: payer balance: %w", err)
	}
	return bal, nil
}

// WaitPayerBalance polls until the payer's balance is want (channel updates settle a little after
// the payment's result is known).
func (n *Network) WaitPayerBalance(ctx context.Context, want int64, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		got, err := n.PayerBalance(ctx)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("payer balance %d, want %d", got, want)
		}
		return nil
	})
}

// Payment is a payment in progress. A hold invoice keeps it in flight until kumo settles or cancels.
type Payment struct {
	done   chan struct{}
	result *lnrpc.Payment
	err    error
}

// Done is closed when the payment has a final result.
func (p *Payment) Done() <-chan struct{} { return p.done }

// Wait returns the final payment (Status SUCCEEDED or FAILED, with FailureReason) or an error if the
// payment could not be followed.
func (p *Payment) Wait(ctx context.Context) (*lnrpc.Payment, error) {
	select {
	case <-p.done:
		return p.result, p.err
	case <-ctx.Done():
		return nil, fmt.Errorf("lndtest: payment still in flight: %w", ctx.Err())
	}
}

// Pay has the payer pay a BOLT11 invoice. It returns at once; the payment goes on until it
// succeeds, fails or ctx ends (hold invoices block the payer until kumo settles or cancels).
func (n *Network) Pay(ctx context.Context, bolt11 string) *Payment {
	p := &Payment{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.result, p.err = n.pay(ctx, bolt11)
	}()
	return p
}

func (n *Network) pay(ctx context.Context, bolt11 string) (*lnrpc.Payment, error) {
	stream, err := n.Payer.router.SendPaymentV2(ctx, &routerrpc.SendPaymentRequest{
		PaymentRequest: bolt11, TimeoutSeconds: 120, FeeLimitSat: 100,
	})
	if err != nil {
		return nil, fmt.Errorf("lndtest: pay: %w", err)
	}
	for {
		pay, err := stream.Recv()
		if err != nil {
			return nil, fmt.Errorf("lndtest: pay: %w", err)
		}
		if pay.Status == lnrpc.Payment_SUCCEEDED || pay.Status == lnrpc.Payment_FAILED {
			return pay, nil
		}
	}
}
