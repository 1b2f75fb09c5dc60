package rooms

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/secure/precis"
)

// Nick rules: a pseudonym is what stands before every message a member sends, so it must not be able
// to pass for the bot or for someone else. Three libraries of Unicode's own rules do the work:
//   - default-ignorable code points (U+034F, U+200D, U+FE0E, U+E0100, U+3164, bidi controls...) render
//     as nothing, so they are removed first: what is stored is what everyone sees;
//   - golang.org/x/text/secure/precis's Nickname profile (RFC 8266) maps width and compatibility forms
//     (NFKC: "ＫＵＭＯ" is "KUMO"), unifies and collapses spaces, and refuses what PRECIS disallows
//     (controls, unassigned code points);
//   - github.com/mtibben/confusables computes the Unicode TR39 skeleton, under which look-alikes are
//     equal (Cyrillic "о" is Latin "o", "I" is "l", "m" is "rn"). Names are compared, and searched
//     for reserved words, by skeleton, never by their code points.
const (
	maxNickLen = 32
	minNickLen = 2
)

// reservedNicks may not appear in a pseudonym's skeleton: the bot's own voice.
var reservedNicks = []string{"kumo", "bot", "system", "admin", "server", "notice", "moderator", "official"}

// forbiddenNickRunes are markup on some platform, the relay's "Name: text" separator, or the notice
// marker. They are refused in the name and in its skeleton, so a look-alike ("∶" for ":") is too.
const forbiddenNickRunes = ":🔔<>@#*_`~|[]\\"

// blankRunes render as empty space although Unicode does not class them as default-ignorable or space.
var blankRunes = map[rune]bool{
	'\u2800': true,                 // BRAILLE PATTERN BLANK
	'\u3164': true,                 // HANGUL FILLER (also default-ignorable; kept here in case a table changes)
	'\uFFA0': true,                 // HALFWIDTH HANGUL FILLER
	'\u115F': true, '\u1160': true, // HANGUL CHOSEONG/JUNGSEONG FILLER
	'\U0001D159': true, // MUSICAL SYMBOL NULL NOTEHEAD
	'\u180E':     true, // MONGOLIAN VOWEL SEPARATOR
}

// defaultIgnorable is Unicode's derived Default_Ignorable_Code_Point property (DerivedCoreProperties):
// Other_Default_Ignorable_Code_Point + Cf + Variation_Selector, minus White_Space, U+FFF9..U+FFFB and
// the prepended concatenation marks (which are visible).
func defaultIgnorable(r rune) bool {
	if unicode.Is(unicode.White_Space, r) || (r >= 0xFFF9 && r <= 0xFFFB) || unicode.Is(unicode.Prepended_Concatenation_Mark, r) {
		return false
	}
	return unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r) || unicode.Is(unicode.Cf, r)
}

// visible says whether r draws something: a letter, digit, punctuation or symbol that is not blank.
// Combining marks alone draw nothing a reader can tell apart.
func visible(r rune) bool {
	if blankRunes[r] || defaultIgnorable(r) {
		return false
	}
	return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
}

// CleanNick normalises a chosen pseudonym and says why it cannot be used, if it cannot. What it
// returns is what members are shown; NickKey of it is what names are compared by.
func CleanNick(nick string) (string, error) {
	if !utf8.ValidString(nick) {
		return "", fmt.Errorf("%w: it is not valid text", ErrNickInvalid)
	}
	nick = strings.Map(func(r rune) rune {
		if defaultIgnorable(r) {
			return -1
		}
		if unicode.IsSpace(r) {
			return ' ' // tabs and newlines too: PRECIS would refuse them as controls
		}
		return r
	}, nick)
	if !strings.ContainsFunc(nick, visible) {
		return "", fmt.Errorf("%w: it would look blank", ErrNickInvalid)
	}
	clean, err := precis.Nickname.String(nick)
	if err != nil {
		return "", fmt.Errorf("%w: it has characters names cannot use", ErrNickInvalid)
	}
	// Blank runes inside a name (between words) would make it look like another.
	if strings.ContainsFunc(clean, func(r rune) bool { return blankRunes[r] }) {
		return "", fmt.Errorf("%w: no blank-looking characters", ErrNickInvalid)
	}
	n := utf8.RuneCountInString(clean)
	switch {
	case n < minNickLen || !strings.ContainsFunc(clean, visible):
		return "", fmt.Errorf("%w: use at least %d characters", ErrNickInvalid, minNickLen)
	case n > maxNickLen:
		return "", fmt.Errorf("%w: use at most %d characters", ErrNickInvalid, maxNickLen)
	}
	key := NickKey(clean)
	if strings.ContainsAny(clean, forbiddenNickRunes) || strings.ContainsAny(key, forbiddenNickRunes) {
		return "", fmt.Errorf("%w: no : @ # < > * _ ` ~ | [ ] \\ or 🔔, nor anything that looks like them", ErrNickInvalid)
	}
	for _, w := range reservedNicks {
		if strings.Contains(key, NickKey(w)) {
			return "", fmt.Errorf("%w: names with %q (or anything that looks like it) are reserved", ErrNickInvalid, w)
		}
	}
	return clean, nil
}

// NickKey is what two pseudonyms are compared by: equal keys look alike. It is the TR39 skeleton,
// lower-cased and skeletoned again, repeated until it no longer changes (so the key of a key is
// itself). TR39 is case-sensitive: it maps "I" to "l" but leaves "i", so "LIVELY" would not meet
// "Lively" once lower-cased; the key therefore also folds "i" into "l" (a few innocent names, "Lily"
// and "Llly", compare equal: the price of catching "Owl" spelled "OwI").
func NickKey(nick string) string {
	nick = strings.Map(func(r rune) rune {
		if defaultIgnorable(r) {
			return -1
		}
		return r
	}, nick)
	k := nick
	for range 8 {
		next := strings.ReplaceAll(confusables.Skeleton(strings.ToLower(confusables.Skeleton(k))), "i", "l")
		if next == k {
			break
		}
		k = next
	}
	return k
}

// sameNick says whether two pseudonyms would look alike to members.
func sameNick(a, b string) bool { return NickKey(a) == NickKey(b) }
