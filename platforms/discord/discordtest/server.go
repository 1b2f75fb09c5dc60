// Package discordtest is a fake Discord: the REST API (v9) and the gateway websocket, speaking the real
// wire format so that the real discordgo client can be tested against it. It keeps just enough state for
// a bot that talks to people in DMs and receives slash commands, enforces the limits a bot meets
// (rate-limit buckets with their headers and 429 answers, a global limit, 2,000 characters, closed DMs,
// the 3-second interaction deadline) and records what every channel received.
//
// It imports nothing of discordgo on purpose: it checks the client against the protocol, not against
// the client's own types.
package discordtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Window is a fixed-window rate limit: N requests per Per.
type Window struct {
	N   int
	Per time.Duration
}

// Options configure a Server. The zero value is usable and has Discord's own limits.
type Options struct {
	// Token is the bot token, without "Bot ". Default "test-token".
	Token string
	// GlobalLimit is the bot-wide request limit (Discord: 50 per second).
	GlobalLimit Window
	// RouteLimit is each route bucket's limit; message creation has one bucket per channel
	// (Discord's DM limit is about 5 per 5 seconds).
	RouteLimit Window
	// DeleteLimit is the bucket of message deletion, one per channel (observed at Discord: 5 per
	// second, discord-api-docs#8330).
	DeleteLimit Window
	// HeartbeatInterval is announced in HELLO (Discord: 41.25 s).
	HeartbeatInterval time.Duration
	// InteractionTimeout is how long an interaction may wait for its initial response (Discord: 3 s).
	InteractionTimeout time.Duration
	// PrivilegedIntents is the set of privileged intents the application was granted in the portal.
	PrivilegedIntents int
}

// Gateway intents the fake understands.
const (
	IntentGuilds         = 1 << 0
	IntentGuildMembers   = 1 << 1 // privileged
	IntentGuildPresences = 1 << 8 // privileged
	IntentGuildMessages  = 1 << 9
	IntentDirectMessages = 1 << 12
	// IntentDirectMessageReactions delivers MESSAGE_REACTION_ADD and _REMOVE in DMs.
	IntentDirectMessageReactions = 1 << 13
	IntentMessageContent         = 1 << 15 // privileged
	privilegedIntentsMask        = IntentGuildMembers | IntentGuildPresences | IntentMessageContent
)

// Message flags.
const (
	FlagSuppressEmbeds = 1 << 2
	FlagEphemeral      = 1 << 6
)

// User is a Discord account known to the fake.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Bot      bool   `json:"bot,omitempty"`
}

// AllowedMentions is a message's allowed_mentions object as received.
type AllowedMentions struct {
	Parse       []string `json:"parse"`
	Roles       []string `json:"roles,omitempty"`
	Users       []string `json:"users,omitempty"`
	RepliedUser bool     `json:"replied_user,omitempty"`
}

// Attachment is an uploaded file.
type Attachment struct {
	Filename    string
	ContentType string
	Data        []byte
}

// Message is one message in a channel, as the fake stored it.
type Message struct {
	ID        string
	ChannelID string
	AuthorID  string
	Content   string
	Flags     int
	// AllowedMentions is nil when the request carried none (Discord then parses every mention).
	AllowedMentions *AllowedMentions
	Attachments     []Attachment
	// Stickers are the stickers a person sent on it (sticker_items).
	Stickers []Sticker
	// Interaction is the id of the interaction this message answers ("" for a plain message).
	Interaction string
	// Deferred is set while the message is an interaction's "thinking..." placeholder.
	Deferred bool
	// ReplyTo is the message it replies to (message_reference); Edits counts its edits.
	ReplyTo string
	Edits   int
	// BotReactions are the bot's own reactions on it, in the order put.
	BotReactions []string
}

// Ephemeral reports whether only the interaction's user can see the message.
func (m Message) Ephemeral() bool { return m.Flags&FlagEphemeral != 0 }

type channel struct {
	id        string
	guildID   string // "" for a DM
	recipient string // DM: the user
	messages  []*Message
}

type interaction struct {
	id, token, channelID, userID string
	created                      time.Time
	responded                    bool
	message                      *Message // the initial response, once there is one
}

type bucket struct {
	start time.Time
	count int
}

// Server is a running fake. Create it with New, stop it with Close.
type Server struct {
	// URL is the base URL to give the client (REST lives under URL+"/api/v9").
	URL string
	// Bot is the bot's own user; its id is also the application id.
	Bot User

	opts Options
	http *httptest.Server
	ids  atomic.Int64

	mu           sync.Mutex
	changed      chan struct{} // closed and replaced on every state change
	users        map[string]*User
	closedDMs    map[string]bool
	channels     map[string]*channel
	dms          map[string]string // user id -> DM channel id
	guilds       map[string]string // guild id -> its text channel id
	commands     []json.RawMessage
	commandNames map[string]string // name -> id
	interactions map[string]*interaction
	tokens       map[string]*interaction
	global       bucket
	buckets      map[string]*bucket
	limited      int // 429 answers given
	invalid      int // 401, 403 and 429 answers: what Discord counts toward its 10,000 per 10 minutes ban
	requests     int
	deletes      map[string]int        // DELETE requests per message id, answered or not
	files        map[string]Attachment // attachments by id, for their CDN address (media.go)
	stickers     map[string]Sticker    // stickers by id, for their CDN address (sticker.go)
	downloads    int

	gw gateway
}

// New starts a fake Discord on 127.0.0.1.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "test-token"
	}
	if opts.GlobalLimit.N == 0 {
		opts.GlobalLimit = Window{N: 50, Per: time.Second}
	}
	if opts.RouteLimit.N == 0 {
		opts.RouteLimit = Window{N: 5, Per: 5 * time.Second}
	}
	if opts.DeleteLimit.N == 0 {
		opts.DeleteLimit = Window{N: 5, Per: time.Second}
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 41250 * time.Millisecond
	}
	if opts.InteractionTimeout == 0 {
		opts.InteractionTimeout = 3 * time.Second
	}
	s := &Server{
		opts:         opts,
		changed:      make(chan struct{}),
		users:        map[string]*User{},
		closedDMs:    map[string]bool{},
		channels:     map[string]*channel{},
		dms:          map[string]string{},
		guilds:       map[string]string{},
		commandNames: map[string]string{},
		interactions: map[string]*interaction{},
		tokens:       map[string]*interaction{},
		buckets:      map[string]*bucket{},
		deletes:      map[string]int{},
	}
	s.ids.Store(1_100_000_000_000_000_000)
	s.Bot = User{ID: s.newID(), Username: "kumo", Bot: true}
	s.users[s.Bot.ID] = &s.Bot
	s.gw.sessions = map[string]*gwSession{}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v9/", s.serveREST)
	mux.HandleFunc("/gateway/", s.serveGateway)
	mux.HandleFunc("GET /attachments/", s.serveAttachment)
	// Stickers are on media.discordapp.net, which clients of the fake reach here too.
	mux.HandleFunc("GET /stickers/", s.serveSticker)
	s.http = httptest.NewServer(mux)
	s.URL = s.http.URL
	return s
}

// Close stops the server and drops every gateway connection.
func (s *Server) Close() {
	s.gw.mu.Lock()
	s.gw.closed = true
	for _, c := range s.gw.conns {
		_ = c.ws.Close()
	}
	s.gw.mu.Unlock()
	s.http.Close()
}

// Token is the bot token the fake accepts.
func (s *Server) Token() string { return s.opts.Token }

func (s *Server) newID() string { return fmt.Sprint(s.ids.Add(1)) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// notifyLocked wakes everyone in Wait. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) notify() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

// Wait blocks until cond() is true or ctx ends. cond is evaluated after every change of the fake's
// state (REST calls, gateway events), so it may call the Server's accessors.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("discordtest: condition not met: %w", ctx.Err())
		}
	}
}

// AddUser creates a Discord account.
func (s *Server) AddUser(username string) User {
	u := &User{ID: s.newID(), Username: username}
	s.mu.Lock()
	s.users[u.ID] = u
	s.notifyLocked()
	s.mu.Unlock()
	return *u
}

// SetDMsClosed makes messages to the user fail with 50007, as when they block DMs from server members.
func (s *Server) SetDMsClosed(userID string, closed bool) {
	s.mu.Lock()
	s.closedDMs[userID] = closed
	s.mu.Unlock()
}

// AddGuild creates a server the bot is in, with one text channel; it returns the guild and channel ids.
func (s *Server) AddGuild() (guildID, channelID string) {
	guildID, channelID = s.newID(), s.newID()
	s.mu.Lock()
	s.guilds[guildID] = channelID
	s.channels[channelID] = &channel{id: channelID, guildID: guildID}
	s.notifyLocked()
	s.mu.Unlock()
	return guildID, channelID
}

// DMChannel is the id of the DM channel between the bot and the user, creating it if needed.
func (s *Server) DMChannel(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dmChannelLocked(userID)
}

func (s *Server) dmChannelLocked(userID string) string {
	if id, ok := s.dms[userID]; ok {
		return id
	}
	id := s.newID()
	s.dms[userID] = id
	s.channels[id] = &channel{id: id, recipient: userID}
	s.notifyLocked()
	return id
}

// Messages returns a copy of everything the bot posted in a channel (including interaction
// responses), oldest first.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channelID]
	if c == nil {
		return nil
	}
	var out []Message
	for _, m := range c.messages {
		if m.AuthorID != s.Bot.ID {
			continue
		}
		cp := *m
		cp.Attachments = append([]Attachment(nil), m.Attachments...)
		cp.Stickers = slices.Clone(m.Stickers)
		cp.BotReactions = slices.Clone(m.BotReactions)
		out = append(out, cp)
	}
	return out
}

// Shown returns a copy of what a channel still shows, everyone's messages, oldest first: what the
// people in it see. Deleted messages are gone from it.
func (s *Server) Shown(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channelID]
	if c == nil {
		return nil
	}
	out := make([]Message, 0, len(c.messages))
	for _, m := range c.messages {
		cp := *m
		cp.Attachments = append([]Attachment(nil), m.Attachments...)
		cp.Stickers = slices.Clone(m.Stickers)
		cp.BotReactions = slices.Clone(m.BotReactions)
		out = append(out, cp)
	}
	return out
}

// InvalidRequests is how many 401, 403 and 429 answers the fake has given: Discord bans a bot's IP
// for an hour once they reach 10,000 in 10 minutes.
func (s *Server) InvalidRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invalid
}

// DeleteAttempts is how many DELETE requests reached the message id, whatever the answer.
func (s *Server) DeleteAttempts(messageID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deletes[messageID]
}

// Commands returns the registered global application commands as the client sent them.
func (s *Server) Commands() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]json.RawMessage(nil), s.commands...)
}

// RateLimited is how many 429 answers the fake has given.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited
}

// Requests is how many authenticated REST requests the fake has answered.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ---- events injected by tests ----

func (s *Server) userJSON(id string) User {
	if u := s.users[id]; u != nil {
		return *u
	}
	return User{ID: id, Username: "unknown"}
}

type messageAttachmentJSON struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url"`
}

// SendDM makes the user write content (and attach files named by attachments) in their DM with the bot,
// delivered as a MESSAGE_CREATE dispatch. It returns the message id.
func (s *Server) SendDM(userID, content string, attachments ...string) string {
	s.mu.Lock()
	ch := s.dmChannelLocked(userID)
	s.mu.Unlock()
	return s.userMessage(userID, ch, "", content, attachments)
}

// SendGuildMessage makes the user write in a server's text channel (MESSAGE_CREATE with guild_id).
func (s *Server) SendGuildMessage(userID, guildID, content string) string {
	s.mu.Lock()
	ch := s.guilds[guildID]
	s.mu.Unlock()
	return s.userMessage(userID, ch, guildID, content, nil)
}

func (s *Server) userMessage(userID, channelID, guildID, content string, attachments []string) string {
	s.mu.Lock()
	id := s.newID()
	author := s.userJSON(userID)
	m := &Message{ID: id, ChannelID: channelID, AuthorID: userID, Content: content}
	if c := s.channels[channelID]; c != nil {
		c.messages = append(c.messages, m)
	}
	s.notifyLocked()
	s.mu.Unlock()
	atts := []messageAttachmentJSON{}
	for _, name := range attachments {
		aid := s.newID()
		s.mu.Lock()
		u := s.storeAttachmentLocked(aid, Attachment{Filename: name, Data: []byte{'x'}}) // one byte, as declared
		s.mu.Unlock()
		atts = append(atts, messageAttachmentJSON{ID: aid, Filename: name, Size: 1, URL: u, ProxyURL: u})
	}
	d := map[string]any{
		"id": id, "channel_id": channelID, "author": author, "content": content, "type": 0,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "tts": false, "mention_everyone": false,
		"mentions": []any{}, "mention_roles": []any{}, "attachments": atts, "embeds": []any{}, "pinned": false,
	}
	intent := IntentDirectMessages
	if guildID != "" {
		d["guild_id"] = guildID
		d["member"] = map[string]any{"roles": []any{}, "joined_at": time.Now().UTC().Format(time.RFC3339)}
		intent = IntentGuildMessages
		// Without the privileged MESSAGE_CONTENT intent, guild messages arrive with their content blanked.
		if s.gw.intentsOf()&IntentMessageContent == 0 {
			d["content"] = ""
			d["attachments"] = []any{}
		}
	}
	s.dispatch("MESSAGE_CREATE", intent, d)
	return id
}

// Interaction is a slash command invocation injected by a test.
type Interaction struct {
	ID, Token, ChannelID string
}

// SlashCommand makes the user invoke the registered command name with options (name -> string value) in
// channelID (a DM channel or a guild's text channel), as an INTERACTION_CREATE dispatch.
func (s *Server) SlashCommand(userID, channelID, name string, options map[string]string) (Interaction, error) {
	s.mu.Lock()
	cmdID, ok := s.commandNames[name]
	c := s.channels[channelID]
	if !ok || c == nil {
		s.mu.Unlock()
		return Interaction{}, fmt.Errorf("discordtest: command %q not registered or channel %s unknown", name, channelID)
	}
	it := &interaction{id: s.newID(), token: "itoken-" + randomHex(16), channelID: channelID, userID: userID, created: time.Now()}
	s.interactions[it.id] = it
	s.tokens[it.token] = it
	user := s.userJSON(userID)
	s.mu.Unlock()

	opts := []map[string]any{}
	for k, v := range options {
		opts = append(opts, map[string]any{"name": k, "type": 3, "value": v})
	}
	d := map[string]any{
		"id": it.id, "application_id": s.Bot.ID, "type": 2, "token": it.token, "version": 1,
		"channel_id": channelID, "locale": "en-US", "app_permissions": "0",
		"data":    map[string]any{"id": cmdID, "name": name, "type": 1, "options": opts},
		"channel": map[string]any{"id": channelID, "type": map[bool]int{true: 1, false: 0}[c.guildID == ""]},
	}
	if c.guildID != "" {
		d["guild_id"] = c.guildID
		d["member"] = map[string]any{"user": user, "roles": []any{}, "permissions": "0", "joined_at": time.Now().UTC().Format(time.RFC3339)}
		d["context"] = 0
	} else {
		d["user"] = user
		d["context"] = 1
	}
	// Interactions are delivered whatever the intents.
	s.dispatch("INTERACTION_CREATE", 0, d)
	return Interaction{ID: it.id, Token: it.token, ChannelID: channelID}, nil
}

// InteractionResponded reports whether the interaction got its initial response (a message or
// "thinking...").
func (s *Server) InteractionResponded(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.interactions[id]
	return it != nil && it.responded
}

// SeedBotMessages puts n messages from the bot in a channel without a request (no rate limit, no
// gateway event): a quick way to fill a DM for tests and benchmarks of deleting. It returns their ids.
func (s *Server) SeedBotMessages(channelID string, n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channelID]
	if c == nil {
		return nil
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = s.newID()
		c.messages = append(c.messages, &Message{ID: ids[i], ChannelID: channelID, AuthorID: s.Bot.ID, Content: fmt.Sprintf("seeded %d", i)})
	}
	s.notifyLocked()
	return ids
}

// SetGlobalLimit changes the bot-wide request limit from now on: a test makes a storm of 429s start
// at the moment it wants one.
func (s *Server) SetGlobalLimit(w Window) {
	s.mu.Lock()
	s.opts.GlobalLimit = w
	s.global = bucket{}
	s.mu.Unlock()
}
