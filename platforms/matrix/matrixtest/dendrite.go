// Package matrixtest runs a real Matrix homeserver (Dendrite v0.13.8, module github.com/matrix-org/dendrite)
// for tests: one fresh instance per test package, on 127.0.0.1, SQLite in a temporary directory,
// shared-secret registration, no federation. It also provides an end-to-end-encrypting test user
// built on the real mautrix client.
package matrixtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/synapseadmin"

	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// DendriteVersion is the homeserver the tests run against; keep it in step with .ci/tools.sh.
const DendriteVersion = "v0.13.8"

// ServerName is the homeserver's name: user ids are @name:localhost.
const ServerName = "localhost"

// Server is a running Dendrite.
type Server struct {
	// URL is the client-server API base, e.g. http://127.0.0.1:41234. It stays valid across Restart.
	URL    string
	addr   string // host:port Dendrite binds, the same on every (re)start
	bin    string
	dir    string
	secret string
	logs   *bridgetest.LogBuffer // the output of every process this Server ran, in order

	// mu serialises Restart and Close, and guards proc (replaced by each launch).
	mu   sync.Mutex
	proc *process
}

// process is one run of the dendrite binary.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Binaries returns the paths of dendrite and generate-keys, building them with the project's tool
// script when they are missing (the script holds a lock, so concurrent callers wait for one build).
func Binaries(ctx context.Context) (dendrite, generateKeys string, err error) {
	tools := os.Getenv("KUMO_TOOLS")
	if tools == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", "", fmt.Errorf("locate tool cache: %w", err)
			}
			cache = filepath.Join(home, ".cache")
		}
		tools = filepath.Join(cache, "kumo-tools")
	}
	bin := filepath.Join(tools, "dendrite-"+DendriteVersion, "bin")
	dendrite, generateKeys = filepath.Join(bin, "dendrite"), filepath.Join(bin, "generate-keys")
	if isExecutable(dendrite) && isExecutable(generateKeys) {
		return dendrite, generateKeys, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", "", errors.New("cannot locate the repository root: not inside a Go module")
	}
	script := filepath.Join(filepath.Dir(gomod), ".ci", "tools.sh")
	cmd := exec.CommandContext(ctx, "bash", script, "dendrite")
	cmd.Env = append(os.Environ(), "KUMO_TOOLS="+tools)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("%s dendrite: %w\n%s", script, err, out)
	}
	if !isExecutable(dendrite) || !isExecutable(generateKeys) {
		return "", "", fmt.Errorf("%s did not produce %s", script, bin)
	}
	return dendrite, generateKeys, nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// config is a Dendrite config for one loopback test instance. With SQLite every component needs its
// own connection string: a global database block only works with Postgres. JetStream keeps its
// streams on disk, as a deployed Dendrite does: in memory, the events the roomserver had stored but
// the sync API had not yet consumed would vanish on Restart, a loss no real restart causes.
const config = `version: 2
global:
  server_name: localhost
  private_key: matrix_key.pem
  key_validity_period: 168h0m0s
  disable_federation: true
  trusted_third_party_id_servers: []
  presence:
    enable_inbound: false
    enable_outbound: false
  report_stats:
    enabled: false
  jetstream:
    in_memory: false
    storage_path: ./jetstream
    topic_prefix: Dendrite
  cache:
    max_size_estimated: 64mb
    max_age: 1h
app_service_api:
  database:
    connection_string: file:appservice.db
client_api:
  registration_disabled: true
  guests_disabled: true
  registration_shared_secret: "%s"
  rate_limiting:
    enabled: false
federation_api:
  database:
    connection_string: file:federationapi.db
  key_perspectives: []
media_api:
  base_path: ./media_store
  database:
    connection_string: file:mediaapi.db
  max_file_size_bytes: 10485760
mscs:
  database:
    connection_string: file:mscs.db
relay_api:
  database:
    connection_string: file:relayapi.db
room_server:
  database:
    connection_string: file:roomserver.db
key_server:
  database:
    connection_string: file:keyserver.db
sync_api:
  database:
    connection_string: file:syncapi.db
  search:
    enabled: false
user_api:
  bcrypt_cost: 4
  account_database:
    connection_string: file:userapi_accounts.db
logging:
  - type: std
    level: warn
`

// Start runs a fresh Dendrite in a new temporary directory and waits until it answers.
func Start(ctx context.Context) (*Server, error) {
	dendrite, generateKeys, err := Binaries(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kumo-dendrite-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	secret := randomHex(16)
	if err := os.WriteFile(filepath.Join(dir, "dendrite.yaml"), fmt.Appendf(nil, config, secret), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("write config: %w", err)
	}
	keys := exec.CommandContext(ctx, generateKeys, "--private-key", "matrix_key.pem")
	keys.Dir = dir
	if out, err := keys.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("generate-keys: %w\n%s", err, out)
	}
	// A port picked by the kernel can in theory be taken again before Dendrite binds it: try a few.
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		s := &Server{URL: "http://" + addr, addr: addr, bin: dendrite, dir: dir, secret: secret, logs: &bridgetest.LogBuffer{}}
		if lastErr = s.launch(ctx); lastErr == nil {
			return s, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

// launch runs dendrite on s.addr with s.dir and waits until it answers. The caller holds s.mu or
// is the only one who knows s yet.
func (s *Server) launch(ctx context.Context) error {
	// Not CommandContext: the server outlives ctx and is stopped by Restart or Close.
	cmd := exec.Command(s.bin, "-config", "dendrite.yaml", "-http-bind-address", s.addr)
	cmd.Dir = s.dir
	cmd.SysProcAttr = procAttr()
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dendrite: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	s.proc = p
	if err := s.waitReady(ctx, p, 3*time.Minute); err != nil {
		p.kill()
		return fmt.Errorf("%w\ndendrite output:\n%s", err, tail(s.logs.String(), 4000))
	}
	return nil
}

func (s *Server) waitReady(ctx context.Context, p *process, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/_matrix/client/versions", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return errors.New("dendrite exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("dendrite not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// terminate asks Dendrite to shut down (SIGTERM, so it closes its databases cleanly) and kills it
// if it has not exited within grace.
func (p *process) terminate(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.kill()
		return nil
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		p.kill()
		return fmt.Errorf("dendrite did not exit within %s of SIGTERM: killed", grace)
	}
}

// Restart stops the homeserver (SIGTERM, then SIGKILL after a bound) and starts it again on the
// same address, directory, database and keys, waiting until it answers. URL stays valid; clients
// see their requests fail while it is down, as they would with a real homeserver restarting. A
// Dendrite that had to be killed still restarts (its SQLite journals recover); the logs say so.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return errors.New("dendrite is closed")
	}
	stopErr := s.proc.terminate(20 * time.Second)
	fmt.Fprintf(s.logs, "--- matrixtest: dendrite restarted on %s (stop: %v) ---\n", s.addr, stopErr)
	// The address was Dendrite's listener a moment ago: Go listeners set SO_REUSEADDR, so connections
	// it left in TIME_WAIT do not stop the new one binding it.
	if err := s.launch(ctx); err != nil {
		s.proc = nil
		return fmt.Errorf("restart dendrite: %w", err)
	}
	return nil
}

// Close kills the homeserver and removes its directory.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
	return os.RemoveAll(s.dir)
}

// Logs returns the end of the homeserver's output, for failure messages.
func (s *Server) Logs() string { return tail(s.logs.String(), 8000) }

// Register creates a user with shared-secret registration and returns its id.
func (s *Server) Register(ctx context.Context, localpart, password string) (id.UserID, error) {
	cli, err := mautrix.NewClient(s.URL, "", "")
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	admin := synapseadmin.Client{Client: cli}
	resp, err := admin.SharedSecretRegister(ctx, s.secret, synapseadmin.ReqSharedSecretRegister{
		Username: localpart, Password: password, InhibitLogin: true,
	})
	if err != nil {
		return "", fmt.Errorf("register %s: %w", localpart, err)
	}
	return resp.UserID, nil
}

// UserID is the id a localpart gets on this server.
func UserID(localpart string) id.UserID { return id.NewUserID(localpart, ServerName) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
