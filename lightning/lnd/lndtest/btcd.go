package lndtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

const (
	rpcUser = "kumo"
	rpcPass = "kumo"
)

// btcd is the chain backend: one regtest btcd with no wallet. It mines to the address it was started
// with, which is why it is started twice (see Start).
type btcd struct {
	bin     string
	dir     string
	rpcPort int
	p2pPort int
	proc    *process
	client  *http.Client
}

func (b *btcd) certPath() string { return filepath.Join(b.dir, "rpc.cert") }
func (b *btcd) rpcAddr() string  { return fmt.Sprintf("127.0.0.1:%d", b.rpcPort) }

// start runs btcd. btcd wipes its regtest chain at every start, so it is only restarted before any
// block was mined.
func (b *btcd) start(ctx context.Context, miningAddr string) error {
	args := []string{
		"--regtest", "--datadir=" + b.dir, "--logdir=" + b.dir,
		"--rpcuser=" + rpcUser, "--rpcpass=" + rpcPass,
		"--rpclisten=" + b.rpcAddr(), fmt.Sprintf("--listen=127.0.0.1:%d", b.p2pPort),
		"--rpccert=" + b.certPath(), "--rpckey=" + filepath.Join(b.dir, "rpc.key"),
		"--txindex", "--nodnsseed",
	}
	if miningAddr != "" {
		args = append(args, "--miningaddr="+miningAddr)
	}
	p, err := startProcess(b.bin, args, filepath.Join(b.dir, "btcd.out"))
	if err != nil {
		return err
	}
	b.proc = p
	// btcd writes its TLS certificate at first start; wait for it, then for an RPC answer.
	err = poll(ctx, 20*time.Second, func() error {
		if p.exited() {
			return errStop(fmt.Errorf("btcd exited: %s", p.tail()))
		}
		if b.client == nil {
			pem, err := os.ReadFile(b.certPath())
			if err != nil {
				return err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("btcd rpc.cert is not PEM yet")
			}
			b.client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			}}
		}
		var h int64
		return b.call(ctx, "getblockcount", nil, &h)
	})
	if err != nil {
		if p.exited() { // the error quotes its output already
			return fmt.Errorf("lndtest: btcd did not start: %w", err)
		}
		return fmt.Errorf("lndtest: btcd did not start: %w (output: %s)", err, p.tail())
	}
	return nil
}

// call makes one JSON-RPC call to btcd.
func (b *btcd) call(ctx context.Context, method string, params []any, result any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+b.rpcAddr(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(rpcUser, rpcPass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	defer resp.Body.Close()
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("btcd %s: HTTP %s: %w", method, resp.Status, err)
	}
	if out.Error != nil {
		return fmt.Errorf("btcd %s: %d %s", method, out.Error.Code, out.Error.Message)
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(out.Result, result)
}

// generate mines n blocks to the mining address and returns their hashes.
func (b *btcd) generate(ctx context.Context, n int) ([]string, error) {
	var hashes []string
	if err := b.call(ctx, "generate", []any{n}, &hashes); err != nil {
		return nil, err
	}
	return hashes, nil
}

func (b *btcd) mempoolSize(ctx context.Context) (int, error) {
	var txs []string
	if err := b.call(ctx, "getrawmempool", nil, &txs); err != nil {
		return 0, err
	}
	return len(txs), nil
}
