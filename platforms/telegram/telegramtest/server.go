// Package telegramtest is a fake Telegram Bot API server for tests. It speaks the real wire format
// (POST /bot<token>/<method> with multipart or urlencoded bodies, JSON {"ok":...} answers), so the real
// github.com/go-telegram/bot client talks to it unchanged, and it behaves like Telegram where the
// adapter depends on it: long polling with offsets, per-chat message ids, HTML entity parsing and
// its 400s, the 4096/1024 limits, rate limits answered with 429 and retry_after, 403 for users who
// blocked the bot, 401 for a wrong token, deleteMessage/deleteMessages with the Bot API's rules, and
// a record of what each chat still shows (the user's own messages included).
package telegramtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Bot API limits the fake enforces.
const (
	MaxText    = 4096
	MaxCaption = 1024
)

// User is a Telegram user as the Bot API describes them.
type User struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	Username  string `json:"username,omitempty"`
}

// Chat is a Telegram chat. A private chat has the same id as its user.
type Chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"` // "private", "group", "supergroup", "channel"
	Title     string `json:"title,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// Private is the private chat between the bot and u.
func Private(u User) Chat {
	return Chat{ID: u.ID, Type: "private", FirstName: u.FirstName, Username: u.Username}
}

// Limits is how fast the fake lets the bot send (sendMessage and sendPhoto). Zero rates mean no limit.
type Limits struct {
	Global       rate.Limit // messages per second over all chats (Telegram: about 30)
	GlobalBurst  int
	PerChat      rate.Limit // messages per second in one chat (Telegram: about 1)
	PerChatBurst int
	// Delete limits deleteMessage and deleteMessages calls per second over all chats. Telegram
	// documents none ("high enough to cover all reasonable usages"); zero means none.
	Delete      rate.Limit
	DeleteBurst int
}

// TelegramLimits is roughly what Telegram allows a bot.
func TelegramLimits() Limits {
	return Limits{Global: 30, GlobalBurst: 30, PerChat: 1, PerChatBurst: 3}
}

// Sent is one message the bot delivered to a chat.
type Sent struct {
	MessageID int
	Method    string // "sendMessage" or "sendPhoto"
	Raw       string // text or caption exactly as sent
	ParseMode string
	Text      string   // what the user sees: Raw after entity parsing (the caption for photos)
	Entities  []Entity // formatting of Text
	Photo     []byte   // uploaded file bytes (sendPhoto with a file part)
	PhotoName string   // uploaded file name
	FileID    string   // sendPhoto by file_id, or the id the fake gave an upload
	// FileData and FileName are the file any send<Media> uploaded (sendPhoto's too); FileID is set
	// when it was sent by file_id or copied (copyMessage: the original's).
	FileData []byte
	FileName string
	// Protected says the message was sent with protect_content: it cannot be forwarded or saved.
	Protected bool
	// ReplyTo is the message it replies to (reply_parameters; 0: none, or not found and allowed).
	ReplyTo int
	At      time.Time
}

// Shown is one message a chat still shows: the bot's or the user's.
type Shown struct {
	MessageID int
	Incoming  bool   // the user sent it
	Text      string // its text or caption as the user sees it
	At        time.Time
	// ReplyTo is the message it replies to (0: none); Edits counts its edits; Reactions are the
	// bot's reactions on it.
	ReplyTo   int
	Edits     int
	Reactions []string
	entities  []Entity
}

// Stats counts what the fake answered.
type Stats struct {
	Calls       map[string]int // answered calls by method, including refused ones
	RateLimited int            // 429 answers from the fake's limits (not from FailNext)
}

type failure struct {
	method     string
	left       int
	code       int
	desc       string
	retryAfter int
}

type chatState struct {
	chat    Chat
	nextID  int
	sent    []Sent
	limiter *rate.Limiter
	// shows is what the chat shows now, in order: the bot's messages and the user's.
	shows []Shown
}

// Server is the fake. Create it with New; it stops when the test ends.
type Server struct {
	token  string
	me     User
	srv    *httptest.Server
	limits Limits

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every recorded change
	updates   []json.RawMessage
	updateIDs []int64
	nextUpd   int64
	poller    chan struct{} // closed to end the current getUpdates with 409
	webhook   string
	chats     map[int64]*chatState
	blocked   map[int64]bool
	failures  []*failure
	global    *rate.Limiter
	deletes   *rate.Limiter
	commands  json.RawMessage
	files     map[string]*storedFile   // by file_id (media.go)
	messages  map[[2]int64]storedMedia // what users sent, by chat and message id, for copyMessage
	stats     Stats
	nextFile  int
	closed    bool
	// allowed is the bot's last allowed_updates (nil: Telegram's default, every kind but
	// chat_member, message_reaction and message_reaction_count).
	allowed []string
}

// Option configures the fake.
type Option func(*Server)

// WithLimits sets the sending limits (default: TelegramLimits).
func WithLimits(l Limits) Option { return func(s *Server) { s.limits = l } }

// WithBot sets the bot's identity (default: id 7000001, username kumo_test_bot).
func WithBot(u User) Option { return func(s *Server) { s.me = u; s.me.IsBot = true } }

// New starts a fake Bot API server; it is closed when t ends.
func New(t testing.TB, opts ...Option) *Server {
	s := &Server{
		me:       User{ID: 7000001, IsBot: true, FirstName: "kumo", Username: "kumo_test_bot"},
		limits:   TelegramLimits(),
		changed:  make(chan struct{}),
		nextUpd:  500000,
		chats:    map[int64]*chatState{},
		blocked:  map[int64]bool{},
		files:    map[string]*storedFile{},
		messages: map[[2]int64]storedMedia{},
		stats:    Stats{Calls: map[string]int{}},
	}
	for _, o := range opts {
		o(s)
	}
	s.token = strconv.FormatInt(s.me.ID, 10) + ":AAFakeTokenForTests-0123456789abcdefgh"
	if s.limits.Global > 0 {
		s.global = rate.NewLimiter(s.limits.Global, max(1, s.limits.GlobalBurst))
	}
	if s.limits.Delete > 0 {
		s.deletes = rate.NewLimiter(s.limits.Delete, max(1, s.limits.DeleteBurst))
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// URL is the server's base URL (for bot.WithServerURL / the adapter's api_url).
func (s *Server) URL() string { return s.srv.URL }

// Token is the only token the fake accepts.
func (s *Server) Token() string { return s.token }

// Me is the bot's own user.
func (s *Server) Me() User { return s.me }

// Close stops the server; pending long polls end.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.notifyLocked()
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Incoming is something a user sends the bot.
type Incoming struct {
	From    User
	Chat    Chat // zero: the private chat with From
	Text    string
	Caption string
	// ReplyTo is the message_id in the chat this message replies to (0: none).
	ReplyTo int
	// Media makes the message a non-text one: "photo", "sticker", "voice", "document", "video",
	// "audio", "animation", "video_note".
	Media string
	// File is the media's bytes, which the bot can then fetch with getFile (media.go); FileName and
	// MIME are what the message declares (documents and audio carry them).
	File     []byte
	FileName string
	MIME     string
	// Thumbnail, on a sticker, makes it an animated one with this still preview.
	Thumbnail []byte
}

// Inject queues an update as if a user sent it; it returns the update_id.
func (s *Server) Inject(in Incoming) int64 {
	if in.Chat.ID == 0 {
		in.Chat = Private(in.From)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chatLocked(in.Chat)
	cs.nextID++
	cs.shows = append(cs.shows, Shown{MessageID: cs.nextID, Incoming: true, Text: in.Text + in.Caption, At: time.Now(), ReplyTo: in.ReplyTo})
	msg := map[string]any{
		"message_id": cs.nextID,
		"from":       in.From,
		"chat":       in.Chat,
		"date":       time.Now().Unix(),
	}
	if in.ReplyTo != 0 {
		// Telegram includes the replied message itself, as far as it still exists.
		if i := indexOf(cs, in.ReplyTo); i >= 0 {
			msg["reply_to_message"] = s.messageLocked(cs, cs.shows[i], in.From)
		}
	}
	if in.Text != "" {
		msg["text"] = in.Text
		if strings.HasPrefix(in.Text, "/") {
			n := strings.IndexAny(in.Text, " \n")
			if n < 0 {
				n = len(in.Text)
			}
			msg["entities"] = []Entity{{Type: "bot_command", Offset: 0, Length: utf16Len(in.Text[:n])}}
		}
	}
	if in.Caption != "" {
		msg["caption"] = in.Caption
	}
	s.nextFile++
	fid := fmt.Sprintf("in-%d", s.nextFile)
	switch in.Media {
	case "":
	case "photo":
		msg["photo"] = []map[string]any{{"file_id": fid, "file_unique_id": fid, "width": 90, "height": 90, "file_size": 1000}}
	case "sticker":
		msg["sticker"] = map[string]any{"file_id": fid, "file_unique_id": fid, "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false, "emoji": "🙂"}
	case "voice":
		msg["voice"] = map[string]any{"file_id": fid, "file_unique_id": fid, "duration": 3, "mime_type": "audio/ogg"}
	case "document":
		msg["document"] = map[string]any{"file_id": fid, "file_unique_id": fid, "file_name": "a.pdf"}
	case "video":
		msg["video"] = map[string]any{"file_id": fid, "file_unique_id": fid, "width": 1, "height": 1, "duration": 1}
	default:
		if !s.injectMediaLocked(msg, in, fid) {
			panic("telegramtest: unknown media " + in.Media)
		}
	}
	if in.Media != "" {
		s.storeInjectedLocked(msg, in, fid, cs.chat.ID, cs.nextID)
	}
	return s.queueLocked("message", msg)
}

// queueLocked queues an update of the kind with its payload; it returns the update_id, or 0 when
// the bot's allowed_updates leave that kind out (Telegram then never sends it).
func (s *Server) queueLocked(kind string, payload any) int64 {
	if !s.allowsLocked(kind) {
		return 0
	}
	s.nextUpd++
	raw, err := json.Marshal(map[string]any{"update_id": s.nextUpd, kind: payload})
	if err != nil {
		panic(err)
	}
	s.updates = append(s.updates, raw)
	s.updateIDs = append(s.updateIDs, s.nextUpd)
	s.notifyLocked()
	return s.nextUpd
}

// Block makes the user behave as if they blocked the bot: sends to their private chat get 403.
func (s *Server) Block(userID int64) {
	s.mu.Lock()
	s.blocked[userID] = true
	s.mu.Unlock()
}

// FailNext makes the next n calls of method fail with code and description; retryAfter (seconds) is
// sent as parameters.retry_after when it is > 0. Failures queue up in the order they were asked.
func (s *Server) FailNext(method string, n, code int, desc string, retryAfter int) {
	s.mu.Lock()
	s.failures = append(s.failures, &failure{method: method, left: n, code: code, desc: desc, retryAfter: retryAfter})
	s.mu.Unlock()
}

// Sent returns a copy of what the bot delivered to a chat so far.
func (s *Server) Sent(chatID int64) []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chats[chatID]
	if cs == nil {
		return nil
	}
	return append([]Sent(nil), cs.sent...)
}

// Shows returns what a chat still shows, oldest first: every message the bot sent and the user sent
// (by Inject) that was not deleted.
func (s *Server) Shows(chatID int64) []Shown {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chats[chatID]
	if cs == nil {
		return nil
	}
	return append([]Shown(nil), cs.shows...)
}

// WaitShows waits until cond holds for what the chat shows, and returns it.
func (s *Server) WaitShows(ctx context.Context, chatID int64, cond func([]Shown) bool) ([]Shown, error) {
	err := s.wait(ctx, func() bool {
		var shows []Shown
		if cs := s.chats[chatID]; cs != nil {
			shows = cs.shows
		}
		return cond(shows)
	})
	got := s.Shows(chatID)
	if err != nil {
		return got, fmt.Errorf("chat %d shows %d messages: %w", chatID, len(got), err)
	}
	return got, nil
}

// Backdate makes every message the chat holds d older, to test Telegram's 48-hour delete window.
func (s *Server) Backdate(chatID int64, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.chats[chatID]; cs != nil {
		for i := range cs.shows {
			cs.shows[i].At = cs.shows[i].At.Add(-d)
		}
	}
}

// Commands returns the bot's command menu as last set with setMyCommands (JSON as sent).
func (s *Server) Commands() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(json.RawMessage(nil), s.commands...)
}

// Stats returns a copy of the call counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := make(map[string]int, len(s.stats.Calls))
	for k, v := range s.stats.Calls {
		c[k] = v
	}
	return Stats{Calls: c, RateLimited: s.stats.RateLimited}
}

// wait blocks until cond, called with s.mu held, holds or ctx ends. Every change the fake records
// closes s.changed, so waiting needs no polling interval.
func (s *Server) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitFor waits until what chatID received satisfies cond and returns it, or fails when ctx ends.
func (s *Server) WaitFor(ctx context.Context, chatID int64, cond func([]Sent) bool) ([]Sent, error) {
	err := s.wait(ctx, func() bool {
		cs := s.chats[chatID]
		return cs != nil && cond(cs.sent)
	})
	return s.Sent(chatID), err
}

// WaitSent waits until chatID received at least n messages and returns them, or fails when ctx ends.
func (s *Server) WaitSent(ctx context.Context, chatID int64, n int) ([]Sent, error) {
	err := s.wait(ctx, func() bool {
		cs := s.chats[chatID]
		return cs != nil && len(cs.sent) >= n
	})
	got := s.Sent(chatID)
	if err != nil {
		return got, fmt.Errorf("chat %d received %d of %d messages: %w", chatID, len(got), n, err)
	}
	return got, nil
}

// WaitCalls waits until method was called at least n times.
func (s *Server) WaitCalls(ctx context.Context, method string, n int) error {
	return s.wait(ctx, func() bool { return s.stats.Calls[method] >= n })
}

// WaitDelivered waits until every update injected so far was confirmed by a later getUpdates offset,
// that is, the bot has received them all.
func (s *Server) WaitDelivered(ctx context.Context) error {
	return s.wait(ctx, func() bool { return len(s.updates) == 0 })
}

func (s *Server) chatLocked(c Chat) *chatState {
	cs := s.chats[c.ID]
	if cs == nil {
		cs = &chatState{chat: c}
		if s.limits.PerChat > 0 {
			cs.limiter = rate.NewLimiter(s.limits.PerChat, max(1, s.limits.PerChatBurst))
		}
		s.chats[c.ID] = cs
	}
	return cs
}

// apiError is a Bot API error answer.
type apiError struct {
	code       int
	desc       string
	retryAfter int
}

func (e *apiError) Error() string { return e.desc }

func badRequest(format string, a ...any) *apiError {
	return &apiError{code: 400, desc: "Bad Request: " + fmt.Sprintf(format, a...)}
}

func reply(w http.ResponseWriter, result any, err *apiError) {
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"ok": err == nil}
	if err != nil {
		body["error_code"] = err.code
		body["description"] = err.desc
		if err.retryAfter > 0 {
			body["parameters"] = map[string]any{"retry_after": err.retryAfter}
		}
		w.WriteHeader(err.code)
	} else {
		body["result"] = result
	}
	_ = json.NewEncoder(w).Encode(body)
}

// form is a request's parameters, from a query string, an urlencoded or JSON body, or multipart.
type form struct {
	values url.Values
	files  map[string]*multipart.FileHeader
}

func (f form) get(k string) string { return f.values.Get(k) }

func readForm(r *http.Request) (form, error) {
	f := form{values: r.URL.Query()}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		// go-telegram/bot sends an empty body (no closing boundary) for calls without parameters such
		// as getMe: Telegram accepts it, so a body that does not parse counts as empty.
		// Uploads stay in memory (up to the 50 MB limit), as kumo's own bytes do.
		err := r.ParseMultipartForm(maxRequest)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return f, err
		}
		if err == nil {
			for k, v := range r.MultipartForm.Value {
				f.values[k] = v
			}
			f.files = map[string]*multipart.FileHeader{}
			for k, v := range r.MultipartForm.File {
				f.files[k] = v[0]
			}
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return f, err
		}
		for k, v := range r.PostForm {
			f.values[k] = v
		}
	case "application/json":
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil && !errors.Is(err, io.EOF) {
			return f, err
		}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				f.values.Set(k, v)
			case float64:
				f.values.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
			default:
				b, _ := json.Marshal(v)
				f.values.Set(k, string(b))
			}
		}
	}
	return f, nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/file/bot") {
		s.serveFile(w, r)
		return
	}
	// Telegram refuses bodies over its 50 MB upload limit before reading further.
	r.Body = http.MaxBytesReader(w, r.Body, maxRequest)
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		reply(w, nil, &apiError{code: 404, desc: "Not Found"})
		return
	}
	if token != s.token {
		reply(w, nil, &apiError{code: 401, desc: "Unauthorized"})
		return
	}
	f, err := readForm(r)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		reply(w, nil, &apiError{code: 413, desc: "Request Entity Too Large"})
		return
	}
	if err != nil {
		reply(w, nil, badRequest("can't parse request: %v", err))
		return
	}
	s.mu.Lock()
	e := s.injectedFailureLocked(method)
	s.mu.Unlock()
	var res any
	if e == nil {
		res, e = s.call(r.Context(), method, f)
	}
	// Counted once answered, so a test waiting for a call sees its effects.
	s.mu.Lock()
	s.stats.Calls[method]++
	s.notifyLocked()
	s.mu.Unlock()
	reply(w, res, e)
}

func (s *Server) call(ctx context.Context, method string, f form) (res any, e *apiError) {
	switch method {
	case "getMe":
		res = s.me
	case "getUpdates":
		res, e = s.getUpdates(ctx, f)
	case "sendMessage":
		res, e = s.sendMessage(f)
	case "sendPhoto":
		res, e = s.sendPhoto(f)
	case "sendDocument", "sendVoice", "sendAudio", "sendVideo", "sendAnimation", "sendVideoNote", "sendSticker":
		res, e = s.sendFile(method, f)
	case "getFile":
		res, e = s.getFile(f)
	case "copyMessage":
		res, e = s.copyMessage(f)
	case "setMyCommands":
		res, e = s.setMyCommands(f)
	case "deleteMyCommands":
		s.mu.Lock()
		s.commands = nil
		s.mu.Unlock()
		res = true
	case "deleteMessage":
		res, e = s.deleteMessage(f)
	case "deleteMessages":
		res, e = s.deleteMessages(f)
	case "editMessageText":
		res, e = s.editMessageText(f)
	case "setMessageReaction":
		res, e = s.setMessageReaction(f)
	case "setWebhook":
		s.mu.Lock()
		s.webhook = f.get("url")
		s.mu.Unlock()
		res = true
	case "deleteWebhook":
		s.mu.Lock()
		s.webhook = ""
		s.mu.Unlock()
		res = true
	case "answerCallbackQuery":
		if f.get("callback_query_id") == "" {
			e = badRequest("query is too old and response timeout expired or query ID is invalid")
		} else {
			res = true
		}
	default:
		e = &apiError{code: 404, desc: "Not Found"}
	}
	return res, e
}

func (s *Server) injectedFailureLocked(method string) *apiError {
	for i, f := range s.failures {
		if f.method != method {
			continue
		}
		f.left--
		if f.left <= 0 {
			s.failures = append(s.failures[:i], s.failures[i+1:]...)
		}
		return &apiError{code: f.code, desc: f.desc, retryAfter: f.retryAfter}
	}
	return nil
}

func (s *Server) getUpdates(ctx context.Context, f form) (any, *apiError) {
	offset, _ := strconv.ParseInt(f.get("offset"), 10, 64)
	limit, _ := strconv.Atoi(f.get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout, _ := strconv.Atoi(f.get("timeout"))
	deadline := time.NewTimer(time.Duration(max(timeout, 0)) * time.Second)
	defer deadline.Stop()

	s.mu.Lock()
	if raw := f.get("allowed_updates"); raw != "" {
		// The setting persists until the next getUpdates that names one; an empty list is the default.
		var kinds []string
		if err := json.Unmarshal([]byte(raw), &kinds); err != nil {
			s.mu.Unlock()
			return nil, badRequest("can't parse allowed updates")
		}
		s.allowed = kinds
		if len(kinds) == 0 {
			s.allowed = nil
		}
	}
	if s.webhook != "" {
		s.mu.Unlock()
		return nil, &apiError{code: 409, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
	}
	// Telegram ends an older long poll when a newer one arrives (two bot instances).
	if s.poller != nil {
		close(s.poller)
	}
	mine := make(chan struct{})
	s.poller = mine
	defer func() {
		s.mu.Lock()
		if s.poller == mine {
			s.poller = nil
		}
		s.mu.Unlock()
	}()
	for {
		// An offset confirms every update below it: they are forgotten.
		if offset != 0 {
			n := 0
			for n < len(s.updateIDs) && s.updateIDs[n] < offset {
				n++
			}
			if n > 0 {
				s.updates, s.updateIDs = s.updates[n:], s.updateIDs[n:]
				s.notifyLocked()
			}
		}
		if len(s.updates) > 0 || timeout <= 0 || s.closed {
			out := append([]json.RawMessage{}, s.updates[:min(limit, len(s.updates))]...)
			s.mu.Unlock()
			return out, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-mine:
			return nil, &apiError{code: 409, desc: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
		case <-deadline.C:
			return []json.RawMessage{}, nil
		case <-ctx.Done():
			return []json.RawMessage{}, nil
		}
		s.mu.Lock()
	}
}

// target checks chat_id and whether the bot may write there; it returns the chat state locked.
func (s *Server) targetLocked(f form) (*chatState, *apiError) {
	raw := f.get("chat_id")
	if raw == "" {
		return nil, badRequest("chat_id is empty")
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, badRequest("chat not found")
	}
	cs := s.chats[id]
	if cs == nil {
		// A bot can only write to chats it has seen: users must start it first.
		return nil, badRequest("chat not found")
	}
	if cs.chat.Type == "private" && s.blocked[id] {
		return nil, &apiError{code: 403, desc: "Forbidden: bot was blocked by the user"}
	}
	return cs, nil
}

// admitLocked applies the rate limits to one message for cs.
func (s *Server) admitLocked(cs *chatState) *apiError {
	now := time.Now()
	var wait time.Duration
	var rg, rc *rate.Reservation
	if s.global != nil {
		rg = s.global.ReserveN(now, 1)
		wait = rg.DelayFrom(now)
	}
	if cs.limiter != nil && wait == 0 {
		rc = cs.limiter.ReserveN(now, 1)
		wait = rc.DelayFrom(now)
	}
	if wait == 0 {
		return nil
	}
	if rc != nil {
		rc.CancelAt(now)
	}
	if rg != nil {
		rg.CancelAt(now)
	}
	s.stats.RateLimited++
	secs := int(math.Ceil(wait.Seconds()))
	return &apiError{code: 429, desc: fmt.Sprintf("Too Many Requests: retry after %d", secs), retryAfter: secs}
}

func checkText(raw, mode string) (string, []Entity, *apiError) {
	if !utf8.ValidString(raw) {
		return "", nil, badRequest("text must be encoded in UTF-8")
	}
	switch strings.ToLower(mode) {
	case "":
		return raw, nil, nil
	case "html":
		text, ents, err := parseHTML(raw)
		if err != nil {
			return "", nil, badRequest("can't parse entities: %v", err)
		}
		return text, ents, nil
	default:
		// The fake only implements HTML; MarkdownV2 would need its own parser.
		return "", nil, badRequest("unsupported parse_mode")
	}
}

// messageText is a message's text field by the Bot API's rules: its markup parsed, not empty once
// parsed, at most MaxText long (answered tooLong: sendMessage and editMessageText word it apart).
func messageText(f form, tooLong string) (raw, text string, ents []Entity, e *apiError) {
	raw = f.get("text")
	text, ents, e = checkText(raw, f.get("parse_mode"))
	if e != nil {
		return "", "", nil, e
	}
	if strings.TrimSpace(text) == "" {
		return "", "", nil, badRequest("message text is empty")
	}
	if utf16Len(text) > MaxText {
		return "", "", nil, badRequest("%s", tooLong)
	}
	return raw, text, ents, nil
}

func (s *Server) sendMessage(f form) (any, *apiError) {
	raw, text, ents, e := messageText(f, "message is too long")
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.targetLocked(f)
	if e != nil {
		return nil, e
	}
	replyTo, e := replyOfLocked(cs, f)
	if e != nil {
		return nil, e
	}
	if e := s.admitLocked(cs); e != nil {
		return nil, e
	}
	return s.recordLocked(cs, Sent{Method: "sendMessage", Raw: raw, ParseMode: f.get("parse_mode"), Text: text, Entities: ents, Protected: f.get("protect_content") == "true", ReplyTo: replyTo}), nil
}

func (s *Server) sendPhoto(f form) (any, *apiError) {
	raw := f.get("caption")
	text, ents, e := checkText(raw, f.get("parse_mode"))
	if e != nil {
		return nil, e
	}
	if utf16Len(text) > MaxCaption {
		return nil, badRequest("message caption is too long")
	}
	sent := Sent{Method: "sendPhoto", Raw: raw, ParseMode: f.get("parse_mode"), Text: text, Entities: ents, Protected: f.get("protect_content") == "true"}
	if fh := f.files["photo"]; fh != nil {
		file, err := fh.Open()
		if err != nil {
			return nil, badRequest("failed to read the photo")
		}
		data, err := io.ReadAll(file)
		_ = file.Close()
		if err != nil || len(data) == 0 {
			return nil, badRequest("IMAGE_PROCESS_FAILED")
		}
		if len(data) > MaxPhotoUpload {
			return nil, badRequest("file is too big")
		}
		sent.Photo, sent.PhotoName = data, fh.Filename
		sent.FileData, sent.FileName = data, fh.Filename
	} else if id := f.get("photo"); id != "" && !strings.HasPrefix(id, "attach://") && !strings.HasPrefix(id, "@") {
		sent.FileID = id
	} else {
		return nil, badRequest("there is no photo in the request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.targetLocked(f)
	if e != nil {
		return nil, e
	}
	if e := s.admitLocked(cs); e != nil {
		return nil, e
	}
	if sent.FileID == "" {
		s.nextFile++
		sent.FileID = fmt.Sprintf("photo-%d", s.nextFile)
		s.files[sent.FileID] = &storedFile{data: sent.Photo, path: "photos/" + sent.FileID + ".jpg"}
	}
	return s.recordLocked(cs, sent), nil
}

func (s *Server) recordLocked(cs *chatState, m Sent) map[string]any {
	cs.nextID++
	m.MessageID = cs.nextID
	m.At = time.Now()
	cs.sent = append(cs.sent, m)
	cs.shows = append(cs.shows, Shown{MessageID: m.MessageID, Text: m.Text, At: m.At, ReplyTo: m.ReplyTo, entities: m.Entities})
	s.notifyLocked()
	msg := map[string]any{
		"message_id": m.MessageID,
		"from":       s.me,
		"chat":       cs.chat,
		"date":       m.At.Unix(),
	}
	if m.ReplyTo != 0 {
		if i := indexOf(cs, m.ReplyTo); i >= 0 {
			msg["reply_to_message"] = s.messageLocked(cs, cs.shows[i], User{ID: cs.chat.ID, FirstName: cs.chat.FirstName, Username: cs.chat.Username})
		}
	}
	if key := mediaField[m.Method]; key != "" && m.Method != "sendPhoto" {
		msg[key] = map[string]any{"file_id": m.FileID, "file_unique_id": m.FileID, "file_size": len(m.FileData)}
		if m.Text != "" {
			msg["caption"] = m.Text
		}
	} else if m.Method == "copyMessage" {
		return map[string]any{"message_id": m.MessageID}
	} else if m.Method == "sendPhoto" {
		msg["photo"] = []map[string]any{{"file_id": m.FileID, "file_unique_id": m.FileID, "width": 320, "height": 320, "file_size": len(m.Photo)}}
		if m.Text != "" {
			msg["caption"] = m.Text
			if len(m.Entities) > 0 {
				msg["caption_entities"] = m.Entities
			}
		}
	} else {
		msg["text"] = m.Text
		if len(m.Entities) > 0 {
			msg["entities"] = m.Entities
		}
	}
	return msg
}

func (s *Server) setMyCommands(f form) (any, *apiError) {
	var cmds []struct {
		Command     string `json:"command"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal([]byte(f.get("commands")), &cmds); err != nil {
		return nil, badRequest("can't parse commands JSON object")
	}
	if len(cmds) > 100 {
		return nil, badRequest("too many commands specified")
	}
	for _, c := range cmds {
		if c.Command == "" || len(c.Command) > 32 || strings.ToLower(c.Command) != c.Command {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if c.Description == "" || utf16Len(c.Description) > 256 {
			return nil, badRequest("command description is empty")
		}
	}
	s.mu.Lock()
	s.commands = json.RawMessage(f.get("commands"))
	s.notifyLocked()
	s.mu.Unlock()
	return true, nil
}

// deleteWindow is how old a message may be and still be deleted.
const deleteWindow = 48 * time.Hour

// deletableLocked says why the message at index i of the chat cannot be deleted, if it cannot: the
// Bot API lets a bot delete, in a private chat, its own messages and the user's, only within 48
// hours; in groups only its own (the fake has no administrators).
func (s *Server) deletableLocked(cs *chatState, i int) *apiError {
	m := cs.shows[i]
	if time.Since(m.At) >= deleteWindow || (m.Incoming && cs.chat.Type != "private") {
		return badRequest("message can't be deleted")
	}
	return nil
}

func (s *Server) admitDeleteLocked() *apiError {
	if s.deletes == nil {
		return nil
	}
	now := time.Now()
	r := s.deletes.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait == 0 {
		return nil
	}
	r.CancelAt(now)
	s.stats.RateLimited++
	secs := int(math.Ceil(wait.Seconds()))
	return &apiError{code: 429, desc: fmt.Sprintf("Too Many Requests: retry after %d", secs), retryAfter: secs}
}

func indexOf(cs *chatState, id int) int {
	for i, m := range cs.shows {
		if m.MessageID == id {
			return i
		}
	}
	return -1
}

// deleteMessage deletes one message: an unknown (or already deleted) id is an error.
func (s *Server) deleteMessage(f form) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.targetLocked(f)
	if e != nil {
		return nil, e
	}
	id, err := strconv.Atoi(f.get("message_id"))
	if err != nil || id <= 0 {
		return nil, badRequest("message identifier is not specified")
	}
	if e := s.admitDeleteLocked(); e != nil {
		return nil, e
	}
	i := indexOf(cs, id)
	if i < 0 {
		return nil, badRequest("message to delete not found")
	}
	if e := s.deletableLocked(cs, i); e != nil {
		return nil, e
	}
	cs.shows = append(cs.shows[:i], cs.shows[i+1:]...)
	s.notifyLocked()
	return true, nil
}

// deleteMessages deletes 1-100 messages at once, skipping ids it cannot find (as documented). What
// Telegram does when one it finds cannot be deleted (too old) is not documented; the fake takes the
// stricter reading: the call fails with deleteMessage's error and deletes nothing.
func (s *Server) deleteMessages(f form) (any, *apiError) {
	var ids []int
	if raw := f.get("message_ids"); raw == "" {
		return nil, badRequest("message identifiers are not specified")
	} else if err := json.Unmarshal([]byte(raw), &ids); err != nil {
		return nil, badRequest("can't parse message identifiers JSON object")
	}
	switch {
	case len(ids) == 0:
		return nil, badRequest("message identifiers are not specified")
	case len(ids) > 100:
		return nil, badRequest("too many message identifiers specified")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.targetLocked(f)
	if e != nil {
		return nil, e
	}
	if e := s.admitDeleteLocked(); e != nil {
		return nil, e
	}
	for _, id := range ids {
		if i := indexOf(cs, id); i >= 0 {
			if e := s.deletableLocked(cs, i); e != nil {
				return nil, e
			}
		}
	}
	keep := cs.shows[:0]
	for _, m := range cs.shows {
		found := false
		for _, id := range ids {
			found = found || id == m.MessageID
		}
		if !found {
			keep = append(keep, m)
		}
	}
	cs.shows = keep
	s.notifyLocked()
	return true, nil
}
