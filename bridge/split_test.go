package bridge_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rivo/uniseg"

	"github.com/kumo-chat/kumo/bridge"
)

// checkSplit asserts Split's promises: pieces fit, nothing is lost or reordered, and no piece starts
// or ends inside a grapheme cluster.
func checkSplit(t *testing.T, text string, budget int) []string {
	t.Helper()
	parts := bridge.Split(text, budget, bridge.UTF16Len)
	if strings.Join(parts, "") != text {
		t.Fatalf("pieces do not add up to the text")
	}
	boundaries := map[int]bool{0: true}
	g := uniseg.NewGraphemes(text)
	for g.Next() {
		_, to := g.Positions()
		boundaries[to] = true
	}
	at := 0
	for i, p := range parts {
		if p == "" {
			t.Fatalf("piece %d is empty", i)
		}
		if !utf8.ValidString(p) && utf8.ValidString(text) {
			t.Fatalf("piece %d is not valid UTF-8", i)
		}
		at += len(p)
		if !boundaries[at] {
			t.Fatalf("piece %d ends inside a grapheme cluster", i)
		}
		// A single cluster longer than the budget cannot be cut; anything else must fit.
		if n := bridge.UTF16Len(p); n > max(budget, 16) && uniseg.GraphemeClusterCount(p) > 1 {
			t.Fatalf("piece %d measures %d, budget %d", i, n, budget)
		}
	}
	return parts
}

func TestSplit(t *testing.T) {
	family := "👨‍👩‍👧‍👦" // 7 runes, 11 UTF-16 units
	flag := "🇯🇵"
	cases := []struct {
		name   string
		text   string
		budget int
		want   []string // nil: only the invariants are checked
	}{
		{"fits", "hello world", 100, []string{"hello world"}},
		{"at a space", "aaaaaaaaaa bbbbbbbbbb cccccccccc", 22, []string{"aaaaaaaaaa bbbbbbbbbb ", "cccccccccc"}},
		{"at a line break rather than a later space", "aaaaaaaaaaaa\nbbb ccc dddd eeee", 24, []string{"aaaaaaaaaaaa\n", "bbb ccc dddd eeee"}},
		{"no break in sight", strings.Repeat("x", 40), 16, []string{strings.Repeat("x", 16), strings.Repeat("x", 16), strings.Repeat("x", 8)}},
		{"emoji families stay whole", strings.Repeat(family, 10), 30, nil},
		{"flags stay whole", strings.Repeat(flag, 20), 17, nil},
		{"skin tones stay whole", strings.Repeat("👍🏽", 30), 17, nil},
		{"combining marks stay whole", strings.Repeat("e\u0301", 50), 17, nil},
		{"CJK", strings.Repeat("東京都", 30), 20, nil},
		{"a space early does not make a tiny piece", "a " + strings.Repeat("b", 40), 20, []string{"a " + strings.Repeat("b", 18), strings.Repeat("b", 20), "bb"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parts := checkSplit(t, c.text, c.budget)
			if c.want != nil && strings.Join(parts, "|") != strings.Join(c.want, "|") {
				t.Fatalf("got %q, want %q", parts, c.want)
			}
			if c.want == nil && len(parts) < 2 {
				t.Fatalf("expected a split, got %d piece(s)", len(parts))
			}
		})
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("hello 👋 world", 16)
	f.Add(strings.Repeat("👨‍👩‍👧‍👦 ", 20), 20)
	f.Add("a\nb\nc d e f g h i j k l m n o p", 17)
	f.Add("\xff\xfe broken utf8 \xc3", 16)
	f.Fuzz(func(t *testing.T, text string, budget int) {
		if budget < 0 || budget > 1<<16 || text == "" {
			t.Skip()
		}
		checkSplit(t, text, budget)
	})
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		in, name, args string
		ok             bool
	}{
		{"/newroom", "newroom", "", true},
		{"!newroom my secret words", "newroom", "my secret words", true},
		{"/join@kumo_bot  pass phrase ", "join", "pass phrase", true},
		{"/JOIN x", "join", "x", true},
		{"/nick\nNew Name", "nick", "New Name", true},
		{"  /who  ", "who", "", true},
		{"/frob", "frob", "", true},
		{"/ hi", "", "", false},
		{"!!!", "", "", false},
		{"/😀", "", "", false},
		{"hello /join x", "", "", false},
		{"/", "", "", false},
		{"", "", "", false},
		{":/ sad", "", "", false},
	}
	for _, c := range cases {
		name, args, ok := bridge.ParseCommand(c.in)
		if name != c.name || args != c.args || ok != c.ok {
			t.Errorf("ParseCommand(%q) = %q, %q, %v; want %q, %q, %v", c.in, name, args, ok, c.name, c.args, c.ok)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"/newroom x", "!join@bot y", "/", "!", "/a\tb", "/x@", "\x00/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, args, ok := bridge.ParseCommand(s)
		if !ok {
			if name != "" || args != "" {
				t.Fatalf("not a command but returned %q %q", name, args)
			}
			return
		}
		if name == "" || name != strings.ToLower(name) || strings.ContainsAny(name, " @\n/!") {
			t.Fatalf("bad command name %q from %q", name, s)
		}
		if args != strings.TrimSpace(args) {
			t.Fatalf("args %q not trimmed", args)
		}
		if p := strings.TrimSpace(s); p[0] != '/' && p[0] != '!' {
			t.Fatalf("%q parsed as a command without a prefix", s)
		}
	})
}

// Random texts of awkward pieces (emoji, flags, combining marks, stray joiners, invalid bytes) with
// small budgets: this found a piece one cluster too long after a cut at an earlier line break.
func TestSplitRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", " ", "\n", "👨‍👩‍👧‍👦", "\xff", "\xc3", "🇯", "e\u0301", "\u200d", "東"}
	for range 20_000 {
		var b strings.Builder
		for range 1 + r.IntN(200) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		checkSplit(t, b.String(), r.IntN(100)-10)
	}
}
