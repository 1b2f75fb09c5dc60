package telegramtest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Entity is a formatting span of a delivered message, in UTF-16 code units like the Bot API's
// MessageEntity.
type Entity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
	URL    string `json:"url,omitempty"`
}

// htmlTags maps the tags Telegram's HTML parse mode accepts to the entity type they produce.
var htmlTags = map[string]string{
	"b": "bold", "strong": "bold",
	"i": "italic", "em": "italic",
	"u": "underline", "ins": "underline",
	"s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
	"tg-spoiler": "spoiler", "span": "spoiler",
	"a":          "text_link",
	"code":       "code",
	"pre":        "pre",
	"blockquote": "blockquote",
	"tg-emoji":   "custom_emoji",
}

type openTag struct {
	name   string
	entity Entity
	start  int // UTF-16 offset where the tag's text begins
}

// parseHTML turns a text sent with parse_mode HTML into the plain text and entities Telegram shows,
// failing the way the Bot API does ("can't parse entities: ...") on markup it does not accept. Like
// Telegram, only &lt; &gt; &amp; &quot; and numeric character references are entities; any other
// '&' is literal.
func parseHTML(s string) (string, []Entity, error) {
	var out strings.Builder
	var ents []Entity
	var stack []openTag
	u16 := 0 // UTF-16 length of out so far
	write := func(str string) {
		out.WriteString(str)
		for _, r := range str {
			u16 += utf16.RuneLen(r)
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '&':
			if r, n, ok := htmlEntity(s[i:]); ok {
				write(r)
				i += n
				continue
			}
			write("&")
			i++
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return "", nil, entityError("Unclosed start tag at byte offset %d", i)
			}
			tag := s[i+1 : i+end]
			if strings.HasPrefix(tag, "/") {
				name := strings.ToLower(strings.TrimSpace(tag[1:]))
				if len(stack) == 0 {
					return "", nil, entityError("Unexpected end tag at byte offset %d", i)
				}
				top := stack[len(stack)-1]
				if name != top.name {
					return "", nil, entityError("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", i, top.name, name)
				}
				stack = stack[:len(stack)-1]
				if u16 > top.start {
					e := top.entity
					e.Offset, e.Length = top.start, u16-top.start
					ents = append(ents, e)
				}
				i += end + 1
				continue
			}
			name, attrs := splitTag(tag)
			typ, ok := htmlTags[name]
			if !ok || (name == "span" && attrs["class"] != "tg-spoiler") {
				return "", nil, entityError("Unsupported start tag \"%s\" at byte offset %d", name, i)
			}
			e := Entity{Type: typ}
			if name == "a" {
				e.URL = attrs["href"]
			}
			stack = append(stack, openTag{name: name, entity: e, start: u16})
			i += end + 1
		default:
			_, n := utf8.DecodeRuneInString(s[i:])
			write(s[i : i+n])
			i += n
		}
	}
	if len(stack) > 0 {
		return "", nil, entityError("Can't find end tag corresponding to start tag \"%s\"", stack[len(stack)-1].name)
	}
	return out.String(), ents, nil
}

// htmlEntity decodes the character reference at the start of s.
func htmlEntity(s string) (string, int, bool) {
	semi := strings.IndexByte(s, ';')
	if semi < 2 || semi > 10 {
		return "", 0, false
	}
	name := s[1:semi]
	switch name {
	case "lt":
		return "<", semi + 1, true
	case "gt":
		return ">", semi + 1, true
	case "amp":
		return "&", semi + 1, true
	case "quot":
		return "\"", semi + 1, true
	}
	if name[0] != '#' || len(name) < 2 {
		return "", 0, false
	}
	var v uint64
	var err error
	if name[1] == 'x' || name[1] == 'X' {
		v, err = strconv.ParseUint(name[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(name[1:], 10, 32)
	}
	if err != nil || !utf8.ValidRune(rune(v)) {
		return "", 0, false
	}
	return string(rune(v)), semi + 1, true
}

// splitTag reads a start tag's name and attributes: `a href="x"` -> "a", {href: x}.
func splitTag(tag string) (string, map[string]string) {
	tag = strings.TrimSpace(strings.TrimSuffix(tag, "/"))
	n := strings.IndexAny(tag, " \t\n")
	if n < 0 {
		return strings.ToLower(tag), nil
	}
	name, rest := strings.ToLower(tag[:n]), tag[n:]
	attrs := map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " \t\n")
		if rest == "" {
			return name, attrs
		}
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			attrs[strings.ToLower(strings.TrimSpace(rest))] = ""
			return name, attrs
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t\n")
		var val string
		if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
			q := rest[0]
			end := strings.IndexByte(rest[1:], q)
			if end < 0 {
				val, rest = rest[1:], ""
			} else {
				val, rest = rest[1:end+1], rest[end+2:]
			}
		} else {
			end := strings.IndexAny(rest, " \t\n")
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		attrs[key] = htmlUnescape(val)
	}
}

func htmlUnescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '&' {
			if r, n, ok := htmlEntity(s[i:]); ok {
				b.WriteString(r)
				i += n
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// utf16Len counts like Telegram does.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// entityError is a "can't parse entities" reason, worded (and capitalised) as Telegram words it.
func entityError(format string, a ...any) error { return &parseError{fmt.Sprintf(format, a...)} }

type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }
