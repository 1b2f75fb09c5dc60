package rooms

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/trustelem/zxcvbn"
)

// Password strength is estimated with github.com/trustelem/zxcvbn, a port of Dropbox's zxcvbn that
// reproduces release 4.4.2 exactly (the upstream test-suite is ported), with its frequency lists of
// 30,000 common passwords, names and English words, keyboard patterns, sequences, dates and l33t.
// nbutton23/zxcvbn-go is older, unmaintained and known to differ from upstream's estimates; an
// estimate kumo relies on for a security bound should be the reference algorithm's.

// ErrPasswordGuessable means a chosen password is long enough but too easy to guess; the error's
// text says why.
var ErrPasswordGuessable = errors.New("that password is too easy to guess")

// wellKnownPasswords are given to zxcvbn as its "user inputs" (words an attacker tries first): the
// example passwords of famous advice, and kumo's own words. zxcvbn 4.4.2's lists predate xkcd 936.
var wellKnownPasswords = []string{
	"correct", "horse", "battery", "staple", "correcthorsebatterystaple", "tr0ub4dor&3", "troubador",
	"kumo", "newroom", "password", "hunter2", "letmein", "trustno1",
}

// strengthRunes is how much of a password zxcvbn reads: its matching grows with the square of the
// length, and a long password is at least as hard to guess as its first strengthRunes characters.
const strengthRunes = 64

// CheckStrength says whether a password may be chosen for a new room: long enough (CheckPassword) and
// estimated to need at least Config.MinGuesses guesses. It does not say whether it is free.
func (s *Store) CheckStrength(password string) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	// Estimated without its spaces: an attacker trying phrases tries them with and without, so the
	// spaces add next to nothing (and zxcvbn would count each as a random character).
	p := []rune(strings.ReplaceAll(NormalizePassword(password), " ", ""))
	if len(p) > strengthRunes {
		p = p[:strengthRunes]
	}
	r := zxcvbn.PasswordStrength(string(p), wellKnownPasswords)
	if r.Guesses >= s.cfg.MinGuesses() {
		return nil
	}
	why := "it is built from common words, names or passwords"
	for _, m := range r.Sequence {
		switch m.Pattern {
		case "spatial":
			why = "it follows a keyboard pattern"
		case "sequence":
			why = "it contains an easy sequence (abc, 123)"
		case "repeat":
			why = "it repeats itself"
		case "date":
			why = "it contains a date"
		default:
			continue
		}
		break
	}
	return fmt.Errorf("%w: %s (about 10^%.0f guesses would find it; a room's password needs 10^%.0f)",
		ErrPasswordGuessable, why, math.Floor(math.Log10(max(r.Guesses, 1))), math.Ceil(math.Log10(s.cfg.MinGuesses())))
}
