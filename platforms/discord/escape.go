package discord

import (
	"strings"
	"unicode/utf8"

	"github.com/kumo-chat/kumo/bridge"
)

// markdownSpecial are the characters that can start Discord markdown or a mention: emphasis and
// underline (* _), strikethrough (~), code (`), spoilers (|), quotes (>), headers and subtext (# -),
// masked links ([ ]), mentions, channels, emoji and timestamps (< @), and the escape itself.
// Every one of them is escaped wherever it is, never depending on context, so that escaping a text
// piecewise gives the same result as escaping it whole (which keeps textLen additive for the core's
// splitting). Discord renders a backslash before any ASCII punctuation as that punctuation alone.
const markdownSpecial = "\\*_~`|><#-[]@"

func special(r rune) bool { return r < utf8.RuneSelf && strings.ContainsRune(markdownSpecial, r) }

// escape makes s inert: no formatting, no mention, no masked link.
func escape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	for _, r := range s {
		if special(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// textLen is how long s is once escaped, in the unit Discord's 2,000 limit counts: Unicode code points.
func textLen(s string) int {
	n := 0
	for _, r := range s {
		n++
		if special(r) {
			n++
		}
	}
	return n
}

// maxContent is Discord's limit on a message's content, in code points.
const maxContent = 2000

// overhead is the most markup render adds around the texts the core measures: "**" twice around a
// pseudonym and a multi-line relay's ">>> " (8; relays carry no code), or the notice's "🔔 *" and
// "*" (4) plus a code block's "```\n" and "\n```" instead of the plain form's newline (8).
const overhead = 4 + 8

// lineOverhead is the markup render adds to each line of a combined send: "**" twice.
const lineOverhead = 4

// render turns a message into Discord markdown in which nothing from the text is markup.
func render(m bridge.Message) string {
	var b strings.Builder
	switch m.Kind {
	case bridge.KindRelay:
		// A text of several lines goes in a quote (">>> " quotes to the end of the message) under its
		// sender's bold name, so none of its lines can pass for a line of the bot's own; escaped text
		// cannot end the quote or start one of its own.
		if strings.Contains(m.Text, "\n") {
			b.WriteString("**" + escape(m.From) + "**:\n>>> " + escape(m.Text))
		} else if len(m.Lines) == 0 {
			b.WriteString("**" + escape(m.From) + "**: " + escape(m.Text))
		}
		// A combined send (the core combines only texts of one line): every line behind its own
		// sender's bold pseudonym, as if sent alone.
		for i, l := range m.Lines {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString("**" + escape(l.From) + "**: " + escape(l.Text))
		}
	case bridge.KindNotice:
		// Italic behind the bell: a member's words always start with their bold pseudonym instead.
		b.WriteString(bridge.NoticeMark + "*" + escape(m.Text) + "*")
	default:
		b.WriteString(escape(m.Text))
	}
	if m.Code != "" {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(codeBlock(m.Code))
	}
	return b.String()
}

// codeBlock shows code in a copyable monospace block. Backticks cannot be escaped inside one, so code
// containing them (a user-chosen password could) is shown escaped instead.
func codeBlock(code string) string {
	if strings.Contains(code, "`") {
		return escape(code)
	}
	return "```\n" + code + "\n```"
}
