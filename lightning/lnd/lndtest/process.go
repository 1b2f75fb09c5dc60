package lndtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is one child server. Its output goes to a file, whose end is quoted when it fails.
type process struct {
	cmd     *exec.Cmd
	outPath string
	done    chan struct{}
	err     error
}

func startProcess(bin string, args []string, outPath string) (*process, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// The child dies with the test binary, even when that one is killed by a test timeout: no
	// servers are left running behind a crashed test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("lndtest: starting %s: %w", bin, err)
	}
	p := &process{cmd: cmd, outPath: outPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to end (SIGTERM, a clean lnd shutdown) and kills it if it takes too long.
func (p *process) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of the process's output, for error messages.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.outPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stopError ends a poll at once: the condition can never become true (a process exited).
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }
func (e stopError) Unwrap() error { return e.err }

func errStop(err error) error { return stopError{err} }

// pollSlack stretches every readiness bound of the harness.
const pollSlack = 4

// poll calls cond every 100 ms until it returns nil, it returns a stopError, ctx ends or timeout
// passes; the error then says what the condition last reported.
func poll(ctx context.Context, timeout time.Duration, cond func() error) error {
	// The bounds name what a healthy node needs on an idle machine; they only exist to catch a hung
	// one. On a loaded 2-core CI machine (race builds of other packages compiling beside the tests)
	// everything takes several times longer, so each bound is stretched rather than made a flake.
	timeout *= pollSlack
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var se stopError
		if errors.As(err, &se) {
			return se.err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("still not ready after %s: %w", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
