package bridge

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// ParseCommand recognises "/name args", "!name args" and Telegram's "/name@botname args". name comes
// back lower-cased; whether it is a known command is the caller's business (unknown ones get help).
// Text that only starts with the prefix ("/ hi", "!!!", "/😀") is not a command: it is relayed.
func ParseCommand(text string) (name, args string, ok bool) {
	text = strings.TrimSpace(text)
	if len(text) < 2 || (text[0] != '/' && text[0] != '!') {
		return "", "", false
	}
	word, rest, _ := strings.Cut(text[1:], " ")
	if i := strings.IndexAny(word, "\n\t"); i >= 0 {
		word, rest = word[:i], word[i+1:]+" "+rest
	}
	if at := strings.IndexByte(word, '@'); at >= 0 {
		word = word[:at]
	}
	if word == "" {
		return "", "", false
	}
	for _, r := range word {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') {
			return "", "", false
		}
	}
	return strings.ToLower(word), strings.TrimSpace(rest), true
}

// The commands, in the order help lists them.
var commandHelp = []struct{ name, args, what, arg string }{
	{"newroom", "[password]", "open a room; without a password you get a strong one", "the room's password (left out, a strong one is made up)"},
	{"join", "<password>", "join a room (or just send me its password)", "the room's password"},
	{"leave", "", "leave your room", ""},
	{"who", "", "who is in the room (pseudonyms only)", ""},
	{"info", "", "time left and number of members", ""},
	{"nick", "<name>", "choose your pseudonym", "your new pseudonym"},
	{"destroy", "", "end your room now, for everyone (creator only)", ""},
	{"reclaim", "<creator key>", "be your room's creator again, from this chat (the key comes with the password)", "the creator key you got when your room opened"},
	{"help", "", "this message", ""},
}

// Commands lists the command names, for adapters that register a command menu.
func Commands() []CommandInfo {
	out := make([]CommandInfo, len(commandHelp))
	for i, c := range commandHelp {
		out[i] = CommandInfo{Name: c.name, Args: c.args, Description: c.what, ArgDescription: c.arg}
	}
	return out
}

// CommandInfo describes one command for a platform's command menu.
type CommandInfo struct {
	Name        string
	Args        string // "", "[password]", "<name>"...
	Description string
	// ArgDescription says what the argument is, for menus that describe each option (Discord).
	ArgDescription string
}

func helpText(priceSat int64, lifetime time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kumo: anonymous chat rooms that self-destruct %s after they open.\n", human(lifetime))
	if priceSat > 0 {
		fmt.Fprintf(&b, "A room costs %s sat, paid with Lightning.\n", groupDigits(priceSat))
	}
	b.WriteString("\n")
	for _, c := range commandHelp {
		b.WriteString("/" + c.name)
		if c.args != "" {
			b.WriteString(" " + c.args)
		}
		b.WriteString(": " + c.what + "\n")
	}
	b.WriteString("\nEvery command also works with ! instead of /. In a room, everything else you send goes to the other members under your pseudonym; they never see who you are here.")
	return b.String()
}

// human renders a duration the way people say it: "23h 59m", "4m 10s", "12s".
func human(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0 && m > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case h > 0:
		return fmt.Sprintf("%dh", h)
	case m > 0 && s > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}

// groupDigits writes 10000 as "10,000".
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
