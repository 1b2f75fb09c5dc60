package telegramtest

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHTML(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		text    string
		ents    []Entity
		wantErr string
	}{
		{name: "plain", in: "hello", text: "hello"},
		{name: "escapes count as one character", in: "a &lt;b&gt; &amp; &quot;c&quot;", text: `a <b> & "c"`},
		{name: "numeric references", in: "&#39;&#x41;&#128512;", text: "'A😀"},
		{name: "a bare ampersand is literal", in: "fish & chips &nbsp; &", text: "fish & chips &nbsp; &"},
		{name: "bold", in: "<b>ann</b>: hi", text: "ann: hi", ents: []Entity{{Type: "bold", Offset: 0, Length: 3}}},
		{name: "offsets in UTF-16", in: "😀<i>x</i>", text: "😀x", ents: []Entity{{Type: "italic", Offset: 2, Length: 1}}},
		{name: "nested", in: "<b>a<i>b</i></b>", text: "ab", ents: []Entity{{Type: "italic", Offset: 1, Length: 1}, {Type: "bold", Offset: 0, Length: 2}}},
		{name: "link", in: `<a href="https://x.y/?a=1&amp;b=2">x</a>`, text: "x", ents: []Entity{{Type: "text_link", Offset: 0, Length: 1, URL: "https://x.y/?a=1&b=2"}}},
		{name: "code", in: "<code>lnbc1&lt;</code>", text: "lnbc1<", ents: []Entity{{Type: "code", Offset: 0, Length: 6}}},
		{name: "spoiler span", in: `<span class="tg-spoiler">s</span>`, text: "s", ents: []Entity{{Type: "spoiler", Offset: 0, Length: 1}}},
		{name: "empty tag makes no entity", in: "<b></b>x", text: "x"},
		{name: "bare less-than", in: "1 < 2", wantErr: "Unclosed start tag"},
		{name: "less-than before a greater-than", in: "a <3 b> c", wantErr: `Unsupported start tag "3"`},
		{name: "unknown tag", in: "<script>x</script>", wantErr: `Unsupported start tag "script"`},
		{name: "plain span", in: "<span>x</span>", wantErr: `Unsupported start tag "span"`},
		{name: "unclosed tag", in: "<b>x", wantErr: `Can't find end tag corresponding to start tag "b"`},
		{name: "crossed tags", in: "<b><i>x</b></i>", wantErr: "Unmatched end tag"},
		{name: "stray end tag", in: "x</b>", wantErr: "Unexpected end tag"},
		{name: "unterminated tag", in: "x <b", wantErr: "Unclosed start tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, ents, err := parseHTML(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseHTML(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHTML(%q): %v", tt.in, err)
			}
			if text != tt.text || !reflect.DeepEqual(ents, tt.ents) {
				t.Fatalf("parseHTML(%q) = %q %+v, want %q %+v", tt.in, text, ents, tt.text, tt.ents)
			}
		})
	}
}
