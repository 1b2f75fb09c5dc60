package main

import (
	"os"
	"strings"
	"testing"

	"github.com/kumo-chat/kumo/lightning/lnd"
)

// The operator docs quote the macaroon line the lnd backend's own tests run.
func TestDocsQuoteTheMacaroonLine(t *testing.T) {
	for _, f := range []string{"../../README.md", "../../config.example.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), lnd.BakeMacaroonCommand) {
			t.Errorf("%s does not quote %q", f, lnd.BakeMacaroonCommand)
		}
	}
}
