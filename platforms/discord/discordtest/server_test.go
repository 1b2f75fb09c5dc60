package discordtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// These tests speak the raw protocol, to pin down what the fake answers where the adapter's tests (which
// use the real discordgo) cannot easily reach.

// request sends a raw REST request to s as the bot with token (none when empty); a JSON body, when
// there is one, is sent as such. It returns the response and its JSON object, if any.
func request(t *testing.T, s *Server, method, path, token string, body io.Reader) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+"/api/v9/"+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bot "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return resp, v
}

func post(t *testing.T, s *Server, path, token, body string) (*http.Response, map[string]any) {
	t.Helper()
	return request(t, s, http.MethodPost, path, token, strings.NewReader(body))
}

func TestRESTLimitsAndErrors(t *testing.T) {
	s := New(Options{RouteLimit: Window{N: 2, Per: time.Hour}, GlobalLimit: Window{N: 100, Per: time.Hour}})
	defer s.Close()
	u := s.AddUser("u")
	ch := s.DMChannel(u.ID)
	msg := `{"content":"hi","allowed_mentions":{"parse":[]}}`

	resp, _ := post(t, s, "channels/"+ch+"/messages", "wrong", msg)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad token: %d", resp.StatusCode)
	}
	for i, wantRemaining := range []string{"1", "0"} {
		resp, _ = post(t, s, "channels/"+ch+"/messages", s.Token(), msg)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Remaining") != wantRemaining ||
			resp.Header.Get("X-RateLimit-Limit") != "2" || resp.Header.Get("X-RateLimit-Bucket") == "" || resp.Header.Get("X-RateLimit-Reset-After") == "" {
			t.Errorf("message %d: %d %v", i, resp.StatusCode, resp.Header)
		}
	}
	resp, body := post(t, s, "channels/"+ch+"/messages", s.Token(), msg)
	if resp.StatusCode != http.StatusTooManyRequests || body["global"] != false || body["retry_after"].(float64) <= 0 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the route limit: %d %v %v", resp.StatusCode, resp.Header, body)
	}
	// Another channel is another bucket.
	other := s.AddUser("o")
	s.SetDMsClosed(other.ID, true)
	resp, body = post(t, s, "channels/"+s.DMChannel(other.ID)+"/messages", s.Token(), msg)
	if resp.StatusCode != http.StatusForbidden || body["code"] != float64(CodeCannotMessageUser) {
		t.Errorf("closed DMs: %d %v", resp.StatusCode, body)
	}
	if got := s.Messages(ch); len(got) != 2 || got[0].AllowedMentions == nil || got[0].AllowedMentions.Parse == nil {
		t.Errorf("recorded %+v", got)
	}

	g := New(Options{GlobalLimit: Window{N: 1, Per: time.Hour}})
	defer g.Close()
	post(t, g, "users/@me/channels", g.Token(), `{"recipient_id":"`+g.AddUser("x").ID+`"}`)
	resp, body = post(t, g, "users/@me/channels", g.Token(), `{"recipient_id":"1"}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-RateLimit-Global") != "true" || body["global"] != true {
		t.Errorf("over the global limit: %d %v %v", resp.StatusCode, resp.Header, body)
	}
}

func dial(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(s.gatewayURL()+"/?v=9&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var hello frame
	if err := ws.ReadJSON(&hello); err != nil || hello.Op != opHello {
		t.Fatalf("no HELLO: %v %+v", err, hello)
	}
	return ws
}

func TestGatewayHandshakes(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	closeCode := func(ws *websocket.Conn) int {
		_, _, err := ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		return 0
	}
	tests := []struct {
		name string
		send map[string]any
		want int // close code, or an opcode answered
	}{
		{"bad token", map[string]any{"op": opIdentify, "d": map[string]any{"token": "Bot nope", "intents": IntentDirectMessages}}, closeAuthenticationFailed},
		{"privileged intent not granted", map[string]any{"op": opIdentify, "d": map[string]any{"token": "Bot " + s.Token(), "intents": IntentMessageContent}}, closeDisallowedIntents},
		{"resume of an unknown session", map[string]any{"op": opResume, "d": map[string]any{"token": "Bot " + s.Token(), "session_id": "nope", "seq": 3}}, opInvalidSession},
		{"heartbeat", map[string]any{"op": opHeartbeat, "d": nil}, opHeartbeatACK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := dial(t, s)
			defer ws.Close()
			if err := ws.WriteJSON(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.want >= 4000 {
				if got := closeCode(ws); got != tc.want {
					t.Errorf("close code %d, want %d", got, tc.want)
				}
				return
			}
			var f frame
			if err := ws.ReadJSON(&f); err != nil || f.Op != tc.want {
				t.Errorf("answer %+v (%v), want op %d", f, err, tc.want)
			}
		})
	}
}

func TestInteractionDeadlineAndSingleAck(t *testing.T) {
	s := New(Options{InteractionTimeout: 200 * time.Millisecond})
	defer s.Close()
	_, ch := s.AddGuild()
	u := s.AddUser("u")
	put, _ := http.NewRequest(http.MethodPut, s.URL+"/api/v9/applications/"+s.Bot.ID+"/commands",
		bytes.NewReader([]byte(`[{"name":"who","description":"Who","type":1}]`)))
	put.Header.Set("Authorization", "Bot "+s.Token())
	put.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("registering: %v %v", resp, err)
	}
	reply := `{"type":4,"data":{"content":"ok","flags":64}}`
	it, err := s.SlashCommand(u.ID, ch, "who", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := post(t, s, "interactions/"+it.ID+"/"+it.Token+"/callback", "", reply); resp.StatusCode != http.StatusNoContent {
		t.Errorf("first response: %d", resp.StatusCode)
	}
	if resp, body := post(t, s, "interactions/"+it.ID+"/"+it.Token+"/callback", "", reply); resp.StatusCode != http.StatusBadRequest || body["code"] != float64(CodeInteractionAcked) {
		t.Errorf("second response: %d %v", resp.StatusCode, body)
	}
	late, _ := s.SlashCommand(u.ID, ch, "who", nil)
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the point of this test is the clock running out
	}
	if resp, body := post(t, s, "interactions/"+late.ID+"/"+late.Token+"/callback", "", reply); resp.StatusCode != http.StatusNotFound || body["code"] != float64(CodeUnknownInteraction) {
		t.Errorf("late response: %d %v", resp.StatusCode, body)
	}
	if _, err := s.SlashCommand(u.ID, ch, "unregistered", nil); err == nil {
		t.Error("an unregistered command was invoked")
	}
}

func del(t *testing.T, s *Server, path string) (*http.Response, map[string]any) {
	t.Helper()
	return request(t, s, http.MethodDelete, path, s.Token(), nil)
}

// TestDeleteInDM pins down Discord's rules for deleting in a DM: the bot's own messages only, unknown
// ones 10008, one bucket per channel with its headers, and 403s and 429s counted as invalid requests.
func TestDeleteInDM(t *testing.T) {
	s := New(Options{DeleteLimit: Window{N: 3, Per: time.Hour}})
	defer s.Close()
	u := s.AddUser("u")
	ch := s.DMChannel(u.ID)
	var bots []string
	for range 3 {
		_, m := post(t, s, "channels/"+ch+"/messages", s.Token(), `{"content":"from the bot"}`)
		bots = append(bots, m["id"].(string))
	}
	theirs := s.SendDM(u.ID, "from the user")

	tests := []struct {
		name      string
		path      string
		status    int
		code      float64 // JSON code of an error answer
		remaining string
		invalid   int // invalid requests counted so far
	}{
		{"the bot's own", "channels/" + ch + "/messages/" + bots[0], http.StatusNoContent, 0, "2", 0},
		{"the user's", "channels/" + ch + "/messages/" + theirs, http.StatusForbidden, CodeCannotActOnDM, "1", 1},
		{"already deleted", "channels/" + ch + "/messages/" + bots[0], http.StatusNotFound, CodeUnknownMessage, "0", 1},
		{"over the bucket", "channels/" + ch + "/messages/" + bots[1], http.StatusTooManyRequests, 0, "0", 2},
		{"unknown channel", "channels/42/messages/" + bots[2], http.StatusNotFound, CodeUnknownChannel, "2", 2},
	}
	for _, tc := range tests {
		resp, body := del(t, s, tc.path)
		if resp.StatusCode != tc.status || resp.Header.Get("X-RateLimit-Remaining") != tc.remaining ||
			resp.Header.Get("X-RateLimit-Bucket") == "" || resp.Header.Get("X-RateLimit-Reset-After") == "" {
			t.Errorf("%s: %d %v %v", tc.name, resp.StatusCode, resp.Header, body)
		}
		if tc.code != 0 && body["code"] != tc.code {
			t.Errorf("%s: code %v, want %v (%v)", tc.name, body["code"], tc.code, body)
		}
		if tc.status == http.StatusTooManyRequests && (body["retry_after"] == nil || body["retry_after"].(float64) <= 0) {
			t.Errorf("%s: no retry_after in %v", tc.name, body)
		}
		if got := s.InvalidRequests(); got != tc.invalid {
			t.Errorf("%s: %d invalid requests, want %d", tc.name, got, tc.invalid)
		}
	}
	var shown []string
	for _, m := range s.Shown(ch) {
		shown = append(shown, m.ID)
	}
	if want := []string{bots[1], bots[2], theirs}; !slices.Equal(shown, want) {
		t.Errorf("the DM shows %v, want %v", shown, want)
	}
	if n := s.DeleteAttempts(theirs); n != 1 {
		t.Errorf("%d delete attempts on the user's message, want 1", n)
	}
}
