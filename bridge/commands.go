package bridge

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/kumo-chat/kumo/rooms"
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

// The commands, in the order help lists them: the one list every platform's menu (Telegram's
// setMyCommands, Discord's application commands) and /help are made from. "{lifetime}" in a text
// is replaced by the configured room lifetime.
var commandHelp = []struct{ name, args, what, arg string }{
	{"newroom", "[password]", "open a room for {lifetime}; without a password you get a strong one", "the room's password (left out, a strong one is made up)"},
	{"join", "<password>", "join a room with its password or an invite (or just send me either)", "the room's password or invite token"},
	{"invite", "[once|revoke]", "invite links that join without the password (once: single-use; revoke: creator cancels all)", "once for a single-use link, revoke to cancel every link"},
	{"leave", "", "leave your room", ""},
	{"who", "", "who is in the room (pseudonyms only)", ""},
	{"info", "", "time left and number of members", ""},
	{"nick", "<name>", "choose your pseudonym", "your new pseudonym"},
	{"extend", "", "keep the room open {lifetime} longer, for another room's price (any member)", ""},
	{"kick", "<pseudonym>", "remove someone from the room for good (creator only)", "the pseudonym of the member to remove"},
	{"lock", "", "let no one new join (creator only)", ""},
	{"unlock", "", "let people join again (creator only)", ""},
	{"destroy", "", "end your room now, for everyone (creator only)", ""},
	{"reclaim", "<creator key>", "be your room's creator again, from this chat (the key comes with the password)", "the creator key you got when your room opened"},
	{"help", "", "this message", ""},
}

// Commands lists the commands as described for the default room lifetime. Adapters use MenuOf,
// which describes the running bridge's.
func Commands() []CommandInfo { return CommandsFor(rooms.DefaultConfig().Lifetime) }

// CommandsFor lists the commands, their texts naming rooms that live for lifetime.
func CommandsFor(lifetime time.Duration) []CommandInfo {
	out := make([]CommandInfo, len(commandHelp))
	for i, c := range commandHelp {
		out[i] = CommandInfo{Name: c.name, Args: c.args, Description: strings.ReplaceAll(c.what, "{lifetime}", human(lifetime)), ArgDescription: c.arg}
	}
	return out
}

// Commands lists the commands as this bridge is configured (its room lifetime in their texts).
func (b *Bridge) Commands() []CommandInfo { return CommandsFor(b.store.Config().Lifetime) }

// MenuOf is the command list an adapter registers as its menu: the bridge's own when h is the
// bridge (or anything else that lists commands), the defaults otherwise.
func MenuOf(h Handler) []CommandInfo {
	if l, ok := h.(interface{ Commands() []CommandInfo }); ok {
		return l.Commands()
	}
	return Commands()
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
	for _, c := range CommandsFor(lifetime) {
		b.WriteString("/" + c.Name)
		if c.Args != "" {
			b.WriteString(" " + c.Args)
		}
		b.WriteString(": " + c.Description + "\n")
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
	if h >= 48 {
		// Extended rooms live for days: "7d", "2d 5h".
		if h%24 == 0 {
			return fmt.Sprintf("%dd", h/24)
		}
		return fmt.Sprintf("%dd %dh", h/24, h%24)
	}
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
