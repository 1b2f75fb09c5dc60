package matrix

import (
	"strings"
	"testing"

	"maunium.net/go/mautrix/crypto/canonicaljson"

	"github.com/kumo-chat/kumo/bridge"
)

// TestTextLen: textLen is exactly what a text adds to the canonical JSON of body + formatted_body,
// for every class of character (so Limits is the real event budget, not a guess).
func TestTextLen(t *testing.T) {
	for _, s := range []string{"a", "é", "雲", "🦊", "<", ">", "&", "'", `"`, "\\", "\n", "\r", "\t", "\x01", "\x1f", "\u2028", "mixed <b>&\n\"🦊\"</b>"} {
		empty := render(bridge.Message{Kind: bridge.KindReply})
		full := render(bridge.Message{Kind: bridge.KindReply, Text: s})
		size := func(body, formatted string) int {
			a, err := canonicaljson.Marshal(map[string]string{"b": body, "f": formatted})
			if err != nil {
				t.Fatal(err)
			}
			return len(a)
		}
		grown := size(full.Body, full.FormattedBody) - size(empty.Body, empty.FormattedBody)
		if got := textLen(s); got != grown {
			t.Errorf("textLen(%q) = %d, but the content grows by %d bytes", s, got, grown)
		}
	}
	if !strings.Contains(render(bridge.Message{Kind: bridge.KindRelay, From: "<x>", Text: "@room"}).FormattedBody, "<b>&lt;x&gt;</b>: @room") {
		t.Error("pseudonym not escaped")
	}
}
