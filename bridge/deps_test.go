package bridge_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The core must stay free of messenger SDKs and Lightning/gRPC code: adapters depend on it, never the
// other way round.
func TestCoreImportsNoSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kumo-chat/kumo/bridge", "github.com/kumo-chat/kumo/rooms").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/bwmarrin/discordgo", "github.com/go-telegram/bot", "maunium.net/go/mautrix",
		"github.com/lightningnetwork/lnd", "google.golang.org/grpc", "github.com/gorilla/websocket"}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 10 {
		t.Fatalf("go list returned too little to judge: %q", out)
	}
	for _, p := range pkgs {
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("the core depends on %s", p)
			}
		}
	}
}
