package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// With no configuration kumo starts on its defaults, says what to open and what to do next, serves
// health, metrics and the web chat, and stops cleanly when told to.
func TestRunWithoutConfig(t *testing.T) {
	t.Chdir(t.TempDir()) // no config.yaml here
	outR, outW := io.Pipe()
	kumo := bridgetest.Background(t, "kumo", func(ctx context.Context) error {
		defer outW.Close()
		return run(ctx, nil, outW, io.Discard, env(map[string]string{"KUMO_HTTP_LISTEN": "127.0.0.1:0"}))
	})
	lines := bufio.NewScanner(outR)
	if !lines.Scan() {
		t.Fatal("kumo printed nothing")
	}
	first := lines.Text()
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(first)
	if url == "" || !strings.Contains(first, "development payments") {
		t.Fatalf("first line: %q", first)
	}
	if !lines.Scan() || !strings.Contains(lines.Text(), "config.example.yaml") {
		t.Fatalf("second line should say how to connect messengers: %q", lines.Text())
	}
	go io.Copy(io.Discard, outR)
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "kumo_rooms_open 0", "/": "<html"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(body)), strings.ToLower(want)) {
			t.Fatalf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	kumo.Stop()
}

func TestRunRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/bad.yaml"
	if err := os.WriteFile(path, []byte("rooms:\n  colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"-config", path}, io.Discard, io.Discard, env(nil))
	if err == nil || !strings.Contains(err.Error(), `unknown key "rooms.colour"`) {
		t.Fatalf("got %v", err)
	}
	err = run(context.Background(), []string{"-config", dir + "/missing.yaml"}, io.Discard, io.Discard, env(nil))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("a missing explicit config should fail, got %v", err)
	}
}

// kumoBinary builds the real binary once for the tests that run it as an operator would.
var kumoBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kumo-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kumo")
	out, err := exec.Command("go", "build", "-tags", "goolm", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// The command line behaves like every Go CLI's: -h exits 0 listing the flags and the environment
// variables, -version prints the version, extra arguments are refused, one argument is the file.
func TestBinaryCommandLine(t *testing.T) {
	bin, err := kumoBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rooms:\n  colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string // each must appear
		stderr string   // exactly, when the run fails
	}{
		{name: "-h", args: []string{"-h"}, stdout: []string{"Usage: kumo [flags] [config.yaml]", "-http.listen", "-version", "KUMO_TELEGRAM_TOKEN", "KUMO_HTTP_LISTEN", "KUMO_LND_MACAROON"}},
		{name: "-help", args: []string{"-help"}, stdout: []string{"Usage: kumo"}},
		{name: "-version", args: []string{"-version"}, stdout: []string{"kumo ", "go1."}},
		{name: "extra arguments", args: []string{"a.yaml", "b.yaml"}, code: 1,
			stderr: "kumo: unexpected arguments [\"a.yaml\" \"b.yaml\"]: kumo takes at most one, its configuration file (kumo -h for help)\n"},
		{name: "unknown flag", args: []string{"-colour"}, code: 1,
			stderr: "kumo: flag provided but not defined: -colour (kumo -h lists the flags and environment variables)\n"},
		{name: "the one argument is the file", args: []string{bad}, code: 1,
			stderr: "kumo: " + bad + ": unknown key \"rooms.colour\" on line 2 (check its spelling against config.example.yaml)\n"},
		{name: "-config and the argument disagree", args: []string{"-config", "x.yaml", bad}, code: 1,
			stderr: "kumo: two configuration files given: -config x.yaml and " + bad + "; give one\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = dir
			cmd.Env = []string{"HOME=" + dir}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			if tc.code != 0 && stderr.String() != tc.stderr {
				t.Errorf("stderr:\n%q\nwant:\n%q", stderr.String(), tc.stderr)
			}
		})
	}
}

// A wildcard listener is shown as an address one can open, not as http://[::]:18090.
func TestDisplayURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"[::]:18090", "http://localhost:18090"},
		{"0.0.0.0:8080", "http://localhost:8080"},
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"[::1]:8080", "http://[::1]:8080"},
		{"192.0.2.7:80", "http://192.0.2.7:80"},
	} {
		addr, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := displayURL(addr); got != tc.want {
			t.Errorf("displayURL(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
