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
	combined := render(bridge.Message{Kind: bridge.KindRelay, Lines: []bridge.Line{{From: "<x>", Text: "a"}, {From: "y", Text: "<b>z</b>"}}})
	if want := "<b>&lt;x&gt;</b>: a<br><b>y</b>: &lt;b&gt;z&lt;/b&gt;"; combined.FormattedBody != want || combined.Body != "<x>: a\ny: <b>z</b>" || combined.MsgType != "m.text" {
		t.Errorf("combined send rendered %q / %q", combined.FormattedBody, combined.Body)
	}
	// A combined send's budget: every line's markup is within Limits' LineOverhead.
	lines := []bridge.Line{{From: "a", Text: "<&>"}, {From: "b", Text: "\""}, {From: "c", Text: "d"}}
	one := render(bridge.Message{Kind: bridge.KindRelay, Lines: lines[:1]})
	all := render(bridge.Message{Kind: bridge.KindRelay, Lines: lines})
	grown := len(all.Body) + len(all.FormattedBody) - len(one.Body) - len(one.FormattedBody)
	if budget := 2 * (lineOverhead + textLen("\n")); grown-textLen("b: \"")-textLen("c: d") > budget {
		t.Errorf("two more lines grew the content by %d bytes beyond their text; LineOverhead allows %d", grown, budget)
	}
}

func TestPacingConfig(t *testing.T) {
	base := Config{Homeserver: "http://127.0.0.1:1", UserID: "@kumo:example.org", Password: "x"}
	for _, tc := range []struct {
		p     Pacing
		valid bool
	}{{Pacing{}, true}, {Pacing{Global: 0.2, GlobalBurst: 10}, true}, {Pacing{Global: -1}, false}} {
		cfg := base
		cfg.Pacing = tc.p
		a, err := New(cfg, nil)
		if (err == nil) != tc.valid {
			t.Errorf("New with %+v: %v, valid %v", tc.p, err, tc.valid)
			continue
		}
		if a != nil && tc.p.Global > 0 && a.limiter.Limit() != tc.p.Global {
			t.Errorf("pacing %+v: limiter at %v", tc.p, a.limiter.Limit())
		}
	}
}
