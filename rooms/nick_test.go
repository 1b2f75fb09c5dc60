package rooms_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/kumo-chat/kumo/rooms"
)

// The impersonations of issue 11, each against a room where someone is "🐺 Proud Wolf".
func TestNicksCannotImpersonate(t *testing.T) {
	const wolf = "🐺 Proud Wolf"
	cases := []struct {
		name, nick string
		want       error
	}{
		{"the same name", wolf, rooms.ErrNickTaken},
		{"other case", "🐺 proud wolf", rooms.ErrNickTaken},
		{"plus U+034F combining grapheme joiner", wolf + "\u034f", rooms.ErrNickTaken},
		{"plus U+200D zero width joiner", "🐺 Proud\u200d Wolf", rooms.ErrNickTaken},
		{"plus U+FE0E variation selector", "🐺\ufe0e Proud Wolf", rooms.ErrNickTaken},
		{"plus U+E0100 variation selector 17", wolf + "\U000E0100", rooms.ErrNickTaken},
		{"plus U+200B zero width space", "🐺 Pro\u200bud Wolf", rooms.ErrNickTaken},
		{"plus a bidi override", "\u202d🐺 Proud Wolf", rooms.ErrNickTaken},
		{"Cyrillic o", "🐺 Pr\u043eud W\u043elf", rooms.ErrNickTaken},
		{"Greek omicron and fullwidth letters", "🐺 Ｐroud Wοlf", rooms.ErrNickTaken},
		{"non-breaking and ideographic spaces", "🐺\u00a0Proud\u3000Wolf", rooms.ErrNickTaken},
		{"I for l", "🐺 Proud WoIf", rooms.ErrNickTaken},
		{"blank: Hangul filler", "\u3164\u3164\u3164", rooms.ErrNickInvalid},
		{"blank: braille blank", "\u2800\u2800\u2800", rooms.ErrNickInvalid},
		{"blank: only invisible", "\u200d\u034f\ufe0e\U000E0100", rooms.ErrNickInvalid},
		{"blank: spaces", "   \u00a0 ", rooms.ErrNickInvalid},
		{"blank inside a name", "Proud\u2800Wolf", rooms.ErrNickInvalid},
		{"kumo with a zero width joiner", "ku\u200dmo", rooms.ErrNickInvalid},
		{"kumo in fullwidth", "ＫＵＭＯ", rooms.ErrNickInvalid},
		{"kumo with rn for m", "kurno", rooms.ErrNickInvalid},
		{"kumo in Cyrillic", "kum\u043e", rooms.ErrNickInvalid},
		{"bot with a zero", "the b0t", rooms.ErrNickInvalid},
		{"admin", "\u0430dmin", rooms.ErrNickInvalid},
		{"the notice marker", "🔔 Proud Wolf left", rooms.ErrNickInvalid},
		{"a look-alike colon", "Wolf\u2236 hi", rooms.ErrNickInvalid},
		{"33 characters", strings.Repeat("a", 33), rooms.ErrNickInvalid},
		{"32 characters", strings.Repeat("b", 32), nil},
		{"one character", "x", rooms.ErrNickInvalid},
		{"a control character", "Wolf\x07", rooms.ErrNickInvalid},
		{"a different name", "🦄 Proud Unicorn", nil},
		{"emoji sequence", "🏳️‍🌈 Rainbow", nil},
		{"CJK", "東京タワー", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t, rooms.Config{}, nil)
			if _, _, err := s.Open(member("wolf"), "the right password, at last"); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := s.Rename(member("wolf").Key(), wolf); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Join("the right password, at last", member("eve"), ""); err != nil {
				t.Fatal(err)
			}
			_, _, m, err := s.Rename(member("eve").Key(), c.nick)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Rename(%q) = %q, %v; want %v", c.nick, m.Nick, err, c.want)
			}
			if err == nil && strings.ContainsFunc(m.Nick, func(r rune) bool { return unicode.Is(unicode.Cf, r) && r != '\u200d' }) {
				t.Fatalf("stored %q keeps invisible characters", m.Nick)
			}
		})
	}
}

// FuzzNickNormaliser: CleanNick never panics; what it accepts it accepts again unchanged; it never
// accepts a name that looks blank or is too long; and the comparison key is a fixed point.
// Run: go test -run '^$' -fuzz FuzzNickNormaliser -fuzztime 60s ./rooms/
func FuzzNickNormaliser(f *testing.F) {
	for _, s := range []string{"🐺 Proud Wolf", "Prоud Wоlf", "ku\u200dmo", "\u3164", "\u2800x", "ＫＵＭＯ", "a\u034fb",
		"🏳️‍🌈", "x\u0301\u0301\u0301", "\u202eevil", "ǅ", "ﬁ", "\U000E0100ab", "İ", "ß", "ﷺ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := rooms.CleanNick(in)
		if err != nil {
			if !errors.Is(err, rooms.ErrNickInvalid) {
				t.Fatalf("CleanNick(%q): %v is not ErrNickInvalid", in, err)
			}
			return
		}
		again, err := rooms.CleanNick(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		if n := utf8.RuneCountInString(out); n < 2 || n > 32 || strings.TrimSpace(out) != out {
			t.Fatalf("%q -> %q: %d characters", in, out, n)
		}
		if k := rooms.NickKey(out); strings.TrimFunc(k, func(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Mn, r) }) == "" {
			t.Fatalf("%q -> %q has a blank key %q", in, out, k)
		}
		if k := rooms.NickKey(out); rooms.NickKey(k) != k {
			t.Fatalf("key of %q is not stable: %q -> %q", out, k, rooms.NickKey(k))
		}
	})
}
