package lndtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Node is one lnd on regtest.
type Node struct {
	Name string
	bin  string
	dir  string
	// RPCAddr is host:port of its gRPC interface.
	RPCAddr string
	// P2PAddr is host:port where it takes peer connections.
	P2PAddr string
	chain   *btcd
	proc    *process

	conn    *grpc.ClientConn
	ln      lnrpc.LightningClient
	router  routerrpc.RouterClient
	invoice invoicesrpc.InvoicesClient
	pubkey  string
}

// TLSCertPath is the node's self-signed certificate, what kumo's `tls_cert` points at.
func (n *Node) TLSCertPath() string { return filepath.Join(n.dir, "tls.cert") }

// AdminMacaroonPath is the node's all-powerful macaroon.
func (n *Node) AdminMacaroonPath() string {
	return filepath.Join(n.dir, "data", "chain", "bitcoin", "regtest", "admin.macaroon")
}

// Dir is the node's lnddir.
func (n *Node) Dir() string { return n.dir }

// Pubkey is the node's identity key, hex.
func (n *Node) Pubkey() string { return n.pubkey }

// Lightning is a client of the node's main RPC service, with the admin macaroon.
func (n *Node) Lightning() lnrpc.LightningClient { return n.ln }

// Invoices is a client of the node's invoicesrpc service, with the admin macaroon.
func (n *Node) Invoices() invoicesrpc.InvoicesClient { return n.invoice }

func (n *Node) args() []string {
	return []string{
		"--lnddir=" + n.dir, "--noseedbackup", "--alias=" + n.Name,
		"--bitcoin.regtest", "--bitcoin.node=btcd",
		"--btcd.rpchost=" + n.chain.rpcAddr(), "--btcd.rpcuser=" + rpcUser, "--btcd.rpcpass=" + rpcPass,
		"--btcd.rpccert=" + n.chain.certPath(),
		"--rpclisten=" + n.RPCAddr, "--listen=" + n.P2PAddr, "--norest",
		"--tlsextraip=127.0.0.1", "--nobootstrap", "--trickledelay=50",
		"--debuglevel=info",
	}
}

// start runs lnd and waits until it answers, is active and synced to the chain. With rpcOnly it
// only waits for the RPC server: on a chain whose newest block is old (a fresh regtest has only the
// 2011 genesis block) lnd waits for a recent block before it becomes fully active.
func (n *Node) start(ctx context.Context, rpcOnly bool) error {
	p, err := startProcess(n.bin, n.args(), filepath.Join(n.dir, "lnd.out"))
	if err != nil {
		return err
	}
	n.proc = p
	err = poll(ctx, 90*time.Second, func() error {
		if p.exited() {
			return errStop(fmt.Errorf("lnd %s exited: %s", n.Name, p.tail()))
		}
		if n.conn == nil {
			if _, err := os.Stat(n.AdminMacaroonPath()); err != nil {
				return err
			}
			conn, err := dial(n.RPCAddr, n.TLSCertPath(), n.AdminMacaroonPath())
			if err != nil {
				return err
			}
			n.conn = conn
			n.ln = lnrpc.NewLightningClient(conn)
			n.router = routerrpc.NewRouterClient(conn)
			n.invoice = invoicesrpc.NewInvoicesClient(conn)
		}
		st, err := lnrpc.NewStateClient(n.conn).GetState(ctx, &lnrpc.GetStateRequest{})
		if err != nil {
			return err
		}
		if rpcOnly && st.State == lnrpc.WalletState_RPC_ACTIVE {
			return nil
		}
		if st.State != lnrpc.WalletState_SERVER_ACTIVE {
			return fmt.Errorf("lnd %s is %s", n.Name, st.State)
		}
		info, err := n.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		if err != nil {
			return err
		}
		if !info.SyncedToChain {
			return fmt.Errorf("lnd %s not synced to chain (height %d)", n.Name, info.BlockHeight)
		}
		n.pubkey = info.IdentityPubkey
		return nil
	})
	if err != nil {
		return fmt.Errorf("lndtest: lnd %s did not start: %w (log: %s)", n.Name, err, n.logTail())
	}
	return nil
}

// stop shuts lnd down cleanly (SIGTERM) and closes the harness's connection to it.
func (n *Node) stop() {
	if n.conn != nil {
		n.conn.Close()
		n.conn = nil
	}
	n.proc.stop()
}

func (n *Node) logTail() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "logs", "bitcoin", "regtest", "lnd.log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// macaroonCred sends a macaroon with every call, the way lnd expects it.
type macaroonCred string

func (m macaroonCred) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"macaroon": string(m)}, nil
}
func (macaroonCred) RequireTransportSecurity() bool { return true }

func dial(addr, certPath, macaroonPath string) (*grpc.ClientConn, error) {
	creds, err := credentials.NewClientTLSFromFile(certPath, "")
	if err != nil {
		return nil, err
	}
	mac, err := os.ReadFile(macaroonPath)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(macaroonCred(hex.EncodeToString(mac))))
}
