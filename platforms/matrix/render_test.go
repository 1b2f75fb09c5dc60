package matrix

import (
	"strings"
	"testing"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/event"

	"github.com/kumo-chat/kumo/bridge"
)

// TestTextLen: textLen is exactly what a text adds to the canonical JSON of body + formatted_body,
// for every class of character (so Limits is the real event budget, not a guess).
func TestTextLen(t *testing.T) {
	for _, s := range []string{"a", "é", "雲", "🦊", "<", ">", "&", "'", `"`, "\\", "\n", "\r", "\t", "\x01", "\x1f", "\u2028", "mixed <b>&\n\"🦊\"</b>"} {
		size := func(c *event.MessageEventContent) int {
			a, err := canonicaljson.Marshal(map[string]string{"b": c.Body, "f": c.FormattedBody})
			if err != nil {
				t.Fatal(err)
			}
			return len(a)
		}
		// Exact for a relay of several lines (the costliest: its plain body quotes every line);
		// never less than what a reply grows by.
		relay := func(text string) *event.MessageEventContent {
			return render(bridge.Message{Kind: bridge.KindRelay, From: "x", Text: "a\n" + text})
		}
		if got, grown := textLen(s), size(relay(s))-size(relay("")); got != grown {
			t.Errorf("textLen(%q) = %d, but a quoted relay grows by %d bytes", s, got, grown)
		}
		reply := func(text string) *event.MessageEventContent {
			return render(bridge.Message{Kind: bridge.KindReply, Text: text})
		}
		if got, grown := textLen(s), size(reply(s))-size(reply("")); got < grown {
			t.Errorf("textLen(%q) = %d, but a reply grows by %d bytes", s, got, grown)
		}
	}
	if !strings.Contains(render(bridge.Message{Kind: bridge.KindRelay, From: "<x>", Text: "@room"}).FormattedBody, "<b>&lt;x&gt;</b>: @room") {
		t.Error("pseudonym not escaped")
	}
}
