package discordtest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Discord's JSON error codes the fake answers with.
const (
	CodeUnknownChannel        = 10003
	CodeUnknownUser           = 10013
	CodeUnknownMessage        = 10008
	CodeUnknownInteraction    = 10062
	CodeCannotActOnDM         = 50003
	CodeMissingPermissions    = 50013
	CodeCannotSendEmpty       = 50006
	CodeCannotMessageUser     = 50007
	CodeInvalidFormBody       = 50035
	CodeInteractionAcked      = 40060
	CodeUnauthorized          = 0
	maxContent                = 2000
	interactionTokenLifetime  = 15 * time.Minute
	interactionResponseSource = 4
	interactionResponseDefer  = 5
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "code": code})
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// statusWriter remembers the status of an answer, to count the invalid ones.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// limit applies the global and the route's limits; it writes a 429 and returns false when exceeded, and
// otherwise sets the bucket headers and returns true. s.mu must be held.
func (s *Server) limitLocked(w http.ResponseWriter, key string, route Window) bool {
	now := time.Now()
	g := &s.global
	if now.Sub(g.start) >= s.opts.GlobalLimit.Per {
		*g = bucket{start: now}
	}
	if g.count >= s.opts.GlobalLimit.N {
		after := g.start.Add(s.opts.GlobalLimit.Per).Sub(now)
		s.limited++
		w.Header().Set("X-RateLimit-Global", "true")
		w.Header().Set("X-RateLimit-Scope", "global")
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(after.Seconds()))))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"message": "You are being rate limited.", "retry_after": after.Seconds(), "global": true, "code": 0})
		return false
	}
	b := s.buckets[key]
	if b == nil || now.Sub(b.start) >= route.Per {
		b = &bucket{start: now}
		s.buckets[key] = b
	}
	after := b.start.Add(route.Per).Sub(now)
	sum := sha1.Sum([]byte(key))
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(route.N))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(b.start.Add(route.Per).UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", secs(after))
	h.Set("X-RateLimit-Bucket", hex.EncodeToString(sum[:8]))
	if b.count >= route.N {
		s.limited++
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Scope", "user")
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(after.Seconds()))))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"message": "You are being rate limited.", "retry_after": after.Seconds(), "global": false, "code": 0})
		return false
	}
	g.count++
	b.count++
	h.Set("X-RateLimit-Remaining", strconv.Itoa(route.N-b.count))
	return true
}

func (s *Server) serveREST(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	defer func() {
		s.mu.Lock()
		switch w.status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
			s.invalid++
		}
		s.notifyLocked()
		s.mu.Unlock()
	}()
	path := strings.TrimPrefix(r.URL.Path, "/api/v9/")
	seg := strings.Split(strings.Trim(path, "/"), "/")

	// Interaction callbacks and webhooks are authenticated by their token in the URL, not by the bot
	// token, and do not count against the bot's global limit.
	switch {
	case r.Method == http.MethodPost && len(seg) == 4 && seg[0] == "interactions" && seg[3] == "callback":
		s.interactionCallback(w, r, seg[1], seg[2])
		return
	case len(seg) >= 3 && seg[0] == "webhooks":
		s.webhook(w, r, seg[1:])
		return
	}

	if r.Header.Get("Authorization") != "Bot "+s.opts.Token {
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, "401: Unauthorized")
		return
	}

	// GET /gateway needs no authentication at Discord, but answering it for any client does no harm.
	// A route's bucket is keyed by its major parameter (the channel), not by the message id.
	key, route := r.Method+" "+strings.Join(seg, "/"), s.opts.RouteLimit
	deleting := r.Method == http.MethodDelete && len(seg) == 4 && seg[0] == "channels" && seg[2] == "messages"
	if deleting {
		key, route = "DELETE channels/"+seg[1]+"/messages/{message.id}", s.opts.DeleteLimit
	}
	reacting := (r.Method == http.MethodPut || r.Method == http.MethodDelete) && len(seg) == 7 &&
		seg[0] == "channels" && seg[2] == "messages" && seg[4] == "reactions" && seg[6] == "@me"
	if reacting {
		// One bucket for a channel's reactions, whatever the message or emoji.
		key = "REACTIONS channels/" + seg[1]
	}
	s.mu.Lock()
	s.requests++
	if deleting {
		s.deletes[seg[3]]++
	}
	if !s.limitLocked(w, key, route) {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	switch {
	case r.Method == http.MethodGet && path == "gateway":
		writeJSON(w, http.StatusOK, map[string]any{"url": s.gatewayURL()})
	case r.Method == http.MethodGet && path == "gateway/bot":
		writeJSON(w, http.StatusOK, map[string]any{"url": s.gatewayURL(), "shards": 1,
			"session_start_limit": map[string]any{"total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1}})
	case r.Method == http.MethodGet && path == "users/@me":
		writeJSON(w, http.StatusOK, s.Bot)
	case r.Method == http.MethodPost && path == "users/@me/channels":
		s.createDM(w, r)
	case r.Method == http.MethodPost && len(seg) == 3 && seg[0] == "channels" && seg[2] == "messages":
		s.createMessage(w, r, seg[1])
	case deleting:
		s.deleteMessage(w, seg[1], seg[3])
	case reacting:
		s.botReaction(w, seg[1], seg[3], seg[5], r.Method == http.MethodPut)
	case r.Method == http.MethodPatch && len(seg) == 4 && seg[0] == "channels" && seg[2] == "messages":
		s.editMessage(w, r, seg[1], seg[3])
	case len(seg) == 3 && seg[0] == "applications" && seg[2] == "commands":
		s.commandsRoute(w, r, seg[1])
	default:
		writeError(w, http.StatusNotFound, 0, "404: Not Found")
	}
}

func (s *Server) gatewayURL() string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + "/gateway"
}

func (s *Server) createDM(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RecipientID string `json:"recipient_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[req.RecipientID]
	if u == nil {
		writeError(w, http.StatusNotFound, CodeUnknownUser, "Unknown User")
		return
	}
	id := s.dmChannelLocked(u.ID)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "type": 1, "last_message_id": nil, "recipients": []User{*u}})
}

// messageBody is what message creation and interaction responses carry.
type messageBody struct {
	// MessageReference makes the message a reply (type 19). Discord refuses one to a message that is
	// not there unless fail_if_not_exists is false.
	MessageReference *struct {
		MessageID       string `json:"message_id"`
		FailIfNotExists *bool  `json:"fail_if_not_exists"`
	} `json:"message_reference"`
	Content         string           `json:"content"`
	Flags           int              `json:"flags"`
	AllowedMentions *AllowedMentions `json:"allowed_mentions"`
	Embeds          []any            `json:"embeds"`
}

// readMessageBody decodes a JSON body, or a multipart body with payload_json and files[n] parts, into
// v; it returns the uploaded files.
func readMessageBody(r *http.Request, v any) ([]Attachment, error) {
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("content type: %w", err)
	}
	if ct == "application/json" {
		return nil, json.NewDecoder(r.Body).Decode(v)
	}
	if ct != "multipart/form-data" {
		return nil, fmt.Errorf("unsupported content type %q", ct)
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var files []Attachment
	sawPayload := false
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		switch name := p.FormName(); {
		case name == "payload_json":
			sawPayload = true
			if err := json.Unmarshal(data, v); err != nil {
				return nil, err
			}
		case strings.HasPrefix(name, "files["):
			if p.FileName() == "" {
				return nil, fmt.Errorf("file part %s without filename", name)
			}
			files = append(files, Attachment{Filename: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data})
		default:
			return nil, fmt.Errorf("unexpected form part %q", name)
		}
	}
	if !sawPayload {
		return nil, fmt.Errorf("multipart body without payload_json")
	}
	return files, nil
}

// validate checks a message body the way Discord does; it writes the error and returns false if invalid.
func validate(w http.ResponseWriter, b messageBody, files []Attachment) bool {
	if b.Content == "" && len(files) == 0 && len(b.Embeds) == 0 {
		writeError(w, http.StatusBadRequest, CodeCannotSendEmpty, "Cannot send an empty message")
		return false
	}
	if utf8.RuneCountInString(b.Content) > maxContent {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": CodeInvalidFormBody,
			"errors": map[string]any{"content": map[string]any{"_errors": []any{map[string]any{
				"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}}}}})
		return false
	}
	if am := b.AllowedMentions; am != nil {
		for _, p := range am.Parse {
			if p != "roles" && p != "users" && p != "everyone" {
				writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
				return false
			}
		}
	}
	return true
}

func (s *Server) messageJSON(m *Message) map[string]any {
	atts := []messageAttachmentJSON{}
	for _, a := range m.Attachments {
		id := s.newID()
		u := s.storeAttachmentLocked(id, a)
		atts = append(atts, messageAttachmentJSON{ID: id, Filename: a.Filename, ContentType: a.ContentType, Size: len(a.Data),
			URL: u, ProxyURL: u})
	}
	out := map[string]any{
		"id": m.ID, "channel_id": m.ChannelID, "author": s.Bot, "content": m.Content, "flags": m.Flags, "type": 0,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "tts": false, "mention_everyone": false,
		"mentions": []any{}, "mention_roles": []any{}, "attachments": atts, "embeds": []any{}, "pinned": false,
	}
	if m.ReplyTo != "" {
		out["type"] = 19
		out["message_reference"] = map[string]any{"type": 0, "message_id": m.ReplyTo, "channel_id": m.ChannelID}
	}
	if m.Edits > 0 {
		out["edited_timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	return out
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, channelID string) {
	var b messageBody
	files, err := readMessageBody(r, &b)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
		return
	}
	s.mu.Lock()
	c := s.channels[channelID]
	if c == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, CodeUnknownChannel, "Unknown Channel")
		return
	}
	if c.guildID == "" && s.closedDMs[c.recipient] {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, CodeCannotMessageUser, "Cannot send messages to this user")
		return
	}
	if !validate(w, b, files) || fileTooBig(w, files) {
		s.mu.Unlock()
		return
	}
	m := &Message{ID: s.newID(), ChannelID: channelID, AuthorID: s.Bot.ID, Content: b.Content,
		Flags: b.Flags &^ FlagEphemeral, AllowedMentions: b.AllowedMentions, Attachments: files}
	if ref := b.MessageReference; ref != nil {
		if slices.ContainsFunc(c.messages, func(o *Message) bool { return o.ID == ref.MessageID }) {
			m.ReplyTo = ref.MessageID
		} else if ref.FailIfNotExists == nil || *ref.FailIfNotExists {
			s.mu.Unlock()
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": CodeInvalidFormBody,
				"errors": map[string]any{"message_reference": map[string]any{"_errors": []any{map[string]any{
					"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}}}}})
			return
		}
	}
	c.messages = append(c.messages, m)
	d := s.messageJSON(m)
	guildID := c.guildID
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, d)
	// Discord tells the bot about its own messages too; a bot must ignore them.
	intent := IntentDirectMessages
	if guildID != "" {
		d["guild_id"] = guildID
		intent = IntentGuildMessages
	}
	s.dispatch("MESSAGE_CREATE", intent, d)
}

// lockMessage takes s.mu and finds messageID in channelID. Where either is not there it answers
// Discord's error (10003 Unknown Channel, 10008 Unknown Message), lets go of s.mu and returns ok
// false; otherwise the caller holds s.mu and lets go of it.
func (s *Server) lockMessage(w http.ResponseWriter, channelID, messageID string) (c *channel, i int, ok bool) {
	s.mu.Lock()
	c = s.channels[channelID]
	if c == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, CodeUnknownChannel, "Unknown Channel")
		return nil, 0, false
	}
	i = slices.IndexFunc(c.messages, func(m *Message) bool { return m.ID == messageID })
	if i < 0 {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, CodeUnknownMessage, "Unknown Message")
		return nil, 0, false
	}
	return c, i, true
}

// deleteMessage is DELETE /channels/{channel.id}/messages/{message.id} with Discord's rules for DMs: a
// bot deletes its own messages (204), never the other person's (403, 50003: there are no permissions
// in a DM to grant it), and a message that is not there is 10008.
func (s *Server) deleteMessage(w http.ResponseWriter, channelID, messageID string) {
	c, i, ok := s.lockMessage(w, channelID, messageID)
	if !ok {
		return
	}
	switch {
	case c.messages[i].AuthorID != s.Bot.ID && c.guildID == "":
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, CodeCannotActOnDM, "Cannot execute action on a DM channel")
		return
	case c.messages[i].AuthorID != s.Bot.ID:
		// The fake's bot is granted no permissions in servers (it is invited with permissions=0).
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, CodeMissingPermissions, "Missing Permissions")
		return
	}
	c.messages = slices.Delete(c.messages, i, i+1)
	guildID := c.guildID
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	d := map[string]any{"id": messageID, "channel_id": channelID}
	intent := IntentDirectMessages
	if guildID != "" {
		d["guild_id"] = guildID
		intent = IntentGuildMessages
	}
	s.dispatch("MESSAGE_DELETE", intent, d)
}

var commandNameOK = func(n string) bool {
	if n == "" || utf8.RuneCountInString(n) > 32 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (s *Server) commandsRoute(w http.ResponseWriter, r *http.Request, appID string) {
	if appID != s.Bot.ID {
		writeError(w, http.StatusForbidden, 50001, "Missing Access")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.Commands())
	case http.MethodPut:
		var cmds []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&cmds); err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
			return
		}
		names := map[string]string{}
		var raws []json.RawMessage
		for _, c := range cmds {
			name, _ := c["name"].(string)
			desc, _ := c["description"].(string)
			if !commandNameOK(name) || desc == "" || utf8.RuneCountInString(desc) > 100 || names[name] != "" {
				writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
				return
			}
			// Required options must come before optional ones.
			opts, _ := c["options"].([]any)
			optional := false
			for _, o := range opts {
				om, _ := o.(map[string]any)
				on, _ := om["name"].(string)
				od, _ := om["description"].(string)
				if !commandNameOK(on) || od == "" || utf8.RuneCountInString(od) > 100 {
					writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
					return
				}
				req, _ := om["required"].(bool)
				if req && optional {
					writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
					return
				}
				optional = optional || !req
			}
			c["id"] = s.newID()
			c["application_id"] = s.Bot.ID
			c["version"] = s.newID()
			names[name] = c["id"].(string)
			raw, _ := json.Marshal(c)
			raws = append(raws, raw)
		}
		s.mu.Lock()
		s.commands = raws
		s.commandNames = names
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, raws)
	default:
		writeError(w, http.StatusMethodNotAllowed, 0, "405: Method Not Allowed")
	}
}

func (s *Server) interactionCallback(w http.ResponseWriter, r *http.Request, id, token string) {
	var resp struct {
		Type int         `json:"type"`
		Data messageBody `json:"data"`
	}
	files, err := readMessageBody(r, &resp)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.interactions[id]
	if it == nil || it.token != token || time.Since(it.created) > s.opts.InteractionTimeout {
		writeError(w, http.StatusNotFound, CodeUnknownInteraction, "Unknown interaction")
		return
	}
	if it.responded {
		writeError(w, http.StatusBadRequest, CodeInteractionAcked, "Interaction has already been acknowledged.")
		return
	}
	m := &Message{ID: s.newID(), ChannelID: it.channelID, AuthorID: s.Bot.ID, Interaction: it.id,
		Flags: resp.Data.Flags, AllowedMentions: resp.Data.AllowedMentions}
	switch resp.Type {
	case interactionResponseSource:
		if !validate(w, resp.Data, files) {
			return
		}
		m.Content, m.Attachments = resp.Data.Content, files
	case interactionResponseDefer:
		m.Deferred = true
	default:
		writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
		return
	}
	it.responded = true
	it.message = m
	s.channels[it.channelID].messages = append(s.channels[it.channelID].messages, m)
	w.WriteHeader(http.StatusNoContent)
}

// webhook serves interaction follow-ups: PATCH/DELETE .../messages/@original and POST (a new message).
// seg is [appID, token, ...].
func (s *Server) webhook(w http.ResponseWriter, r *http.Request, seg []string) {
	appID, token := seg[0], seg[1]
	s.mu.Lock()
	it := s.tokens[token]
	s.mu.Unlock()
	if appID != s.Bot.ID || it == nil || time.Since(it.created) > interactionTokenLifetime {
		writeError(w, http.StatusNotFound, 10015, "Unknown Webhook")
		return
	}
	var b messageBody
	switch {
	case r.Method == http.MethodPatch && len(seg) == 4 && seg[2] == "messages" && seg[3] == "@original":
		files, err := readMessageBody(r, &b)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if it.message == nil {
			writeError(w, http.StatusNotFound, 10008, "Unknown Message")
			return
		}
		if !validate(w, b, files) || fileTooBig(w, files) {
			return
		}
		m := it.message
		m.Content, m.Attachments, m.AllowedMentions, m.Deferred = b.Content, files, b.AllowedMentions, false
		writeJSON(w, http.StatusOK, s.messageJSON(m))
	case r.Method == http.MethodDelete && len(seg) == 4 && seg[2] == "messages" && seg[3] == "@original":
		s.mu.Lock()
		defer s.mu.Unlock()
		if it.message == nil {
			writeError(w, http.StatusNotFound, 10008, "Unknown Message")
			return
		}
		c := s.channels[it.channelID]
		c.messages = slices.DeleteFunc(c.messages, func(m *Message) bool { return m == it.message })
		it.message = nil
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && len(seg) == 2:
		files, err := readMessageBody(r, &b)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !it.responded {
			writeError(w, http.StatusNotFound, CodeUnknownInteraction, "Unknown interaction")
			return
		}
		if !validate(w, b, files) || fileTooBig(w, files) {
			return
		}
		m := &Message{ID: s.newID(), ChannelID: it.channelID, AuthorID: s.Bot.ID, Interaction: it.id,
			Content: b.Content, Flags: b.Flags, AllowedMentions: b.AllowedMentions, Attachments: files}
		s.channels[it.channelID].messages = append(s.channels[it.channelID].messages, m)
		if r.URL.Query().Get("wait") == "true" {
			writeJSON(w, http.StatusOK, s.messageJSON(m))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusNotFound, 0, "404: Not Found")
	}
}
