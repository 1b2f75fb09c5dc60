package discordtest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, s *Server, method, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	return request(t, s, method, path, s.Token(), strings.NewReader(body))
}

// TestRepliesEditsReactionsInDM pins down Discord's rules the adapter relies on: a reply to a message
// that is not there is refused unless fail_if_not_exists is false, the bot edits only its own
// messages, and reactions are unicode emoji, at most 20 different ones per message.
func TestRepliesEditsReactionsInDM(t *testing.T) {
	s := New(Options{RouteLimit: Window{N: 100, Per: time.Second}})
	defer s.Close()
	u := s.AddUser("u")
	ch := s.DMChannel(u.ID)
	_, m := post(t, s, "channels/"+ch+"/messages", s.Token(), `{"content":"mine"}`)
	bot := m["id"].(string)
	theirs := s.SendDM(u.ID, "theirs")
	react := func(id, emoji string) string {
		return "channels/" + ch + "/messages/" + id + "/reactions/" + url.PathEscape(emoji) + "/@me"
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     float64
	}{
		{"reply", http.MethodPost, "channels/" + ch + "/messages", `{"content":"re","message_reference":{"message_id":"` + theirs + `"}}`, http.StatusOK, 0},
		{"reply to a missing message", http.MethodPost, "channels/" + ch + "/messages", `{"content":"re","message_reference":{"message_id":"999"}}`, http.StatusBadRequest, CodeInvalidFormBody},
		{"reply to a missing message, allowed", http.MethodPost, "channels/" + ch + "/messages", `{"content":"re","message_reference":{"message_id":"999","fail_if_not_exists":false}}`, http.StatusOK, 0},
		{"edit the bot's", http.MethodPatch, "channels/" + ch + "/messages/" + bot, `{"content":"edited"}`, http.StatusOK, 0},
		{"edit the user's", http.MethodPatch, "channels/" + ch + "/messages/" + theirs, `{"content":"edited"}`, http.StatusForbidden, CodeCannotEditOthers},
		{"edit a missing one", http.MethodPatch, "channels/" + ch + "/messages/999", `{"content":"x"}`, http.StatusNotFound, CodeUnknownMessage},
		{"react on the user's", http.MethodPut, react(theirs, "👍"), "", http.StatusNoContent, 0},
		{"a custom emoji", http.MethodPut, react(theirs, "kumo:123"), "", http.StatusBadRequest, CodeUnknownEmoji},
		{"take it back", http.MethodDelete, react(theirs, "👍"), "", http.StatusNoContent, 0},
	}
	for _, tc := range tests {
		resp, body := call(t, s, tc.method, tc.path, tc.body)
		if resp.StatusCode != tc.status || (tc.code != 0 && body["code"] != tc.code) {
			t.Errorf("%s: %d %v, want %d code %v", tc.name, resp.StatusCode, body, tc.status, tc.code)
		}
	}
	for i := range maxReactions {
		if resp, body := call(t, s, http.MethodPut, react(bot, fmt.Sprintf("%c", '😀'+rune(i))), ""); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("reaction %d: %d %v", i+1, resp.StatusCode, body)
		}
	}
	if resp, body := call(t, s, http.MethodPut, react(bot, "👍"), ""); resp.StatusCode != http.StatusBadRequest || body["code"] != float64(CodeMaxReactions) {
		t.Fatalf("a 21st reaction: %d %v", resp.StatusCode, body)
	}
	for _, m := range s.Shown(ch) {
		if m.ID == bot && (m.Content != "edited" || m.Edits != 1 || len(m.BotReactions) != maxReactions) {
			t.Fatalf("the bot's message is %+v", m)
		}
		if m.ID == theirs && len(m.BotReactions) != 0 {
			t.Fatalf("the user's message keeps %v", m.BotReactions)
		}
	}
}
