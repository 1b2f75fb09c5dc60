package rooms

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// Pseudonyms pair an animal with its emoji, so the emoji alone tells members apart at a glance.
var animals = [...]struct{ emoji, name string }{
	{"🦊", "Fox"}, {"🐼", "Panda"}, {"🦉", "Owl"}, {"🐙", "Octopus"}, {"🦁", "Lion"}, {"🐢", "Turtle"},
	{"🐧", "Penguin"}, {"🦔", "Hedgehog"}, {"🐋", "Whale"}, {"🦩", "Flamingo"}, {"🐝", "Bee"}, {"🦦", "Otter"},
	{"🐨", "Koala"}, {"🦎", "Lizard"}, {"🐺", "Wolf"}, {"🦌", "Deer"}, {"🐸", "Frog"}, {"🦜", "Parrot"},
	{"🐯", "Tiger"}, {"🦥", "Sloth"}, {"🐬", "Dolphin"}, {"🦀", "Crab"}, {"🐰", "Rabbit"}, {"🦇", "Bat"},
	{"🐻", "Bear"}, {"🦭", "Seal"}, {"🐌", "Snail"}, {"🦢", "Swan"}, {"🐿️", "Squirrel"}, {"🦒", "Giraffe"},
	{"🐊", "Crocodile"}, {"🦙", "Llama"},
}

var adjectives = [...]string{
	"Quiet", "Brave", "Calm", "Clever", "Gentle", "Lucky", "Merry", "Nimble", "Proud", "Swift",
	"Witty", "Bold", "Bright", "Cosy", "Daring", "Eager", "Fuzzy", "Grumpy", "Happy", "Jolly",
	"Kind", "Lively", "Mellow", "Noble", "Polite", "Quick", "Rusty", "Shy", "Sleepy", "Sunny",
	"Tidy", "Wise",
}

// randIntn is uniform in [0, n) from the system's CSPRNG: pseudonyms and passwords must not be
// predictable from one another.
func randIntn(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics inside rand.Read instead).
		panic(err)
	}
	return int(v.Int64())
}

// randomPseudonym draws "🦊 Quiet Fox" style names.
func randomPseudonym() string {
	a := animals[randIntn(len(animals))]
	return a.emoji + " " + adjectives[randIntn(len(adjectives))] + " " + a.name
}

// Generated passwords are four pronounceable words of three consonant-vowel syllables
// ("bakoru-tefima-..."): 80 syllables, 12 per password, log2(80^12) = 75.9 bits, easy to read aloud.
const (
	consonants = "bdfghjklmnprstvz"
	vowels     = "aeiou"
	// PasswordWords and PasswordSyllables shape generated passwords.
	passwordWords     = 4
	passwordSyllables = 3
)

// GeneratePassword returns a new random password with more than 64 bits of entropy.
func GeneratePassword() string {
	var b strings.Builder
	for w := range passwordWords {
		if w > 0 {
			b.WriteByte('-')
		}
		for range passwordSyllables {
			b.WriteByte(consonants[randIntn(len(consonants))])
			b.WriteByte(vowels[randIntn(len(vowels))])
		}
	}
	return b.String()
}
