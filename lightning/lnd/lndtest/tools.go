package lndtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Versions of the binaries, kept in step with /.ci/tools.sh and with lnrpc in go.mod: an lnd whose
// version differs from the lnrpc the product compiles against would test a different protocol.
const (
	btcdVersion = "v0.25.0"
	lndVersion  = "v0.20.1-beta"
	// lndTags must match tools.sh; invoicesrpc is what enables hold invoices.
	lndTags = "signrpc_walletrpc_chainrpc_invoicesrpc_routerrpc_peersrpc"
)

// Binaries are the paths of the programs the network runs.
type Binaries struct {
	Btcd, Lnd, Lncli string
}

// toolsDir is where .ci/tools.sh caches what it builds.
func toolsDir() (string, error) {
	if d := os.Getenv("KUMO_TOOLS"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kumo-tools"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("lndtest: no KUMO_TOOLS and no home directory: %w", err)
	}
	return filepath.Join(home, ".cache", "kumo-tools"), nil
}

// FindBinaries returns btcd and lnd from the tools cache, building them with .ci/tools.sh first when
// they are missing, so that `go test` works on a fresh machine (a cold build takes about 6 minutes).
func FindBinaries(ctx context.Context) (Binaries, error) {
	dir, err := toolsDir()
	if err != nil {
		return Binaries{}, err
	}
	lndDir := filepath.Join(dir, "lnd-"+lndVersion+"-"+lndTags, "bin")
	b := Binaries{
		Btcd:  filepath.Join(dir, "btcd-"+btcdVersion, "bin", "btcd"),
		Lnd:   filepath.Join(lndDir, "lnd"),
		Lncli: filepath.Join(lndDir, "lncli"),
	}
	if b.present() {
		return b, nil
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return Binaries{}, err
	}
	script := filepath.Join(root, ".ci", "tools.sh")
	cmd := exec.CommandContext(ctx, "bash", script, "btcd", "lnd")
	cmd.Env = append(os.Environ(), "KUMO_TOOLS="+dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return Binaries{}, fmt.Errorf("lndtest: building btcd and lnd with %s: %w", script, err)
	}
	if !b.present() {
		return Binaries{}, fmt.Errorf("lndtest: %s ran but %s or %s is still missing", script, b.Btcd, b.Lnd)
	}
	return b, nil
}

func (b Binaries) present() bool {
	for _, p := range []string{b.Btcd, b.Lnd, b.Lncli} {
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// repoRoot is the directory of kumo's go.mod, found the way the go command finds it.
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("lndtest: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("lndtest: not inside a Go module, cannot find .ci/tools.sh")
	}
	return filepath.Dir(mod), nil
}
