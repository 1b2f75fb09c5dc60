package matrix

import (
	"html"
	"strings"
	"unicode/utf8"

	"maunium.net/go/mautrix/event"

	"github.com/kumo-chat/kumo/bridge"
)

// Matrix caps a whole event (the signed PDU, with its envelope) at 65536 bytes of canonical JSON.
// What grows with the text is the content: the plain body plus the HTML formatted_body, and in
// encrypted rooms all of it inside the megolm ciphertext, base64-encoded (x 4/3). Both the server
// and mautrix's encryption write canonical JSON, which escapes only quotes, backslashes and control
// characters. textLen counts those bytes per rune, so the bridge splits long texts where the event
// would overflow: maxText (+ overhead) x 4/3 = 59008 bytes, leaving over 6 KB for the PDU's own
// fields (ids, hashes, signatures, the encryption header). TestLimits sends the worst cases.
const (
	maxText = 44000
	// overhead is what render adds around the text: <b></b>, ": ", the notice mark, <br><code></code>,
	// msgtype, format and m.mentions.
	overhead = 256
	// lineOverhead is what render adds to each line of a combined send: <b></b> and ": " in the
	// formatted body (the newline between lines the bridge measures itself, as textLen("\n")).
	lineOverhead = 16
)

// textLen is the number of content-JSON bytes a rune costs in the body plus the formatted body.
// It is additive by construction (a sum over runes).
func textLen(s string) int {
	n := 0
	for _, r := range s {
		n += jsonLen(r) + htmlLen(r)
	}
	return n
}

// jsonLen is the length of r inside a canonical JSON string.
func jsonLen(r rune) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t' || r == '\b' || r == '\f':
		return 2
	case r < 0x20:
		return 6 // \u00XX
	case r == utf8.RuneError:
		return 3
	}
	return utf8.RuneLen(r)
}

// htmlLen is the length of r in the formatted body (escaped by escapeText), in canonical JSON.
func htmlLen(r rune) int {
	switch r {
	case '<', '>':
		return 4 // &lt; &gt;
	case '\n':
		// <br> in the formatted body, and in a relay's plain body the "> " that continues its quote.
		return 4 + len(quoteMark)
	case '&', '\'', '"':
		return 5 // &amp; &#39; &#34;
	}
	return jsonLen(r)
}

// quoteMark starts each line of a quote in a plain body (the fallback convention of Matrix clients).
const quoteMark = "> "

// escapeText makes text inert HTML: nothing a member types becomes markup, a link or a pill.
func escapeText(s string) string {
	return strings.ReplaceAll(html.EscapeString(s), "\n", "<br>")
}

// render turns a bridge message into Matrix content: a plain body (Message.String) and an escaped
// HTML body. Every message carries an empty m.mentions, which tells clients and servers that it
// mentions no one: "@room" or a user id in the text notifies nobody (MSC3952, spec v1.7).
// Members' words go out as m.text; everything the bot says itself as m.notice, as bots should.
func render(m bridge.Message) *event.MessageEventContent {
	var b strings.Builder
	msgType := event.MsgNotice
	switch m.Kind {
	case bridge.KindRelay:
		msgType = event.MsgText
		// A text of several lines goes in a quote under its sender's bold name, so none of its lines
		// can pass for a line of the bot's own. The tags are within overhead.
		if strings.Contains(m.Text, "\n") {
			b.WriteString("<b>" + escapeText(m.From) + "</b>:<blockquote>" + escapeText(m.Text) + "</blockquote>")
		} else if len(m.Lines) == 0 {
			b.WriteString("<b>" + escapeText(m.From) + "</b>: " + escapeText(m.Text))
		}
		// A combined send (the core combines only texts of one line): every line behind its own
		// sender's bold pseudonym, as if sent alone.
		for i, l := range m.Lines {
			if i > 0 {
				b.WriteString("<br>")
			}
			b.WriteString("<b>" + escapeText(l.From) + "</b>: " + escapeText(l.Text))
		}
	case bridge.KindNotice:
		b.WriteString("<i>" + escapeText(bridge.NoticeMark+m.Text) + "</i>")
	default:
		b.WriteString(escapeText(m.Text))
	}
	if m.Code != "" {
		if b.Len() > 0 {
			b.WriteString("<br>")
		}
		b.WriteString("<code>" + escapeText(m.Code) + "</code>")
	}
	body := m.String()
	if m.Kind == bridge.KindRelay && strings.Contains(m.Text, "\n") {
		// The plain body is what notifications and clients without HTML show: there too every line
		// of a member's text stays in a quote under their name.
		body = m.From + ":\n" + quoteMark + strings.ReplaceAll(m.Text, "\n", "\n"+quoteMark)
	}
	return &event.MessageEventContent{
		MsgType:       msgType,
		Body:          body,
		Format:        event.FormatHTML,
		FormattedBody: b.String(),
		Mentions:      &event.Mentions{},
	}
}
