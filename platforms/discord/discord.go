// Package discord connects kumo to Discord through a bot: people meet it in a server that added it, and
// their rooms live in their DMs with the bot. Slash commands work everywhere; used in a server channel
// they answer ephemerally and continue in a DM, so nothing of a room ever appears in a server.
package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
)

// Name is the platform's name in bridge.Addr.
const Name = "discord"

// Config is the `discord:` section of kumo's configuration.
type Config struct {
	// Token is the bot token from the developer portal (without "Bot ").
	Token string `yaml:"token" secret:"true"`
	// APIURL points REST and gateway discovery somewhere other than discord.com; for tests only.
	APIURL string `yaml:"api_url"`
	// Pacing is how fast kumo sends (discord.pacing.*); a key left out keeps Discord's own limit.
	Pacing Pacing `yaml:"pacing"`
}

// Pacing is how fast the adapter sends REST requests. Discord allows a bot 50 requests per second
// in all and, per its route headers, 5 messages per 5 seconds into one DM channel. Its windows are
// fixed, so the token buckets here are sized never to exceed them in any window: global 40/s in
// bursts of 10 (at most 50 in a second), one message a second into a DM in bursts of 1 (at most 5 in
// 5 seconds). discordgo also waits on the route buckets Discord's headers announce.
type Pacing struct {
	Global      rate.Limit `yaml:"global"`       // requests per second over all routes
	GlobalBurst int        `yaml:"global_burst"` // how many of them may go at once
	PerDM       rate.Limit `yaml:"per_dm"`       // messages per second into one DM channel
	PerDMBurst  int        `yaml:"per_dm_burst"` // how many of them may go at once
}

// DefaultPacing stays under Discord's limits (see Pacing).
func DefaultPacing() Pacing { return Pacing{Global: 40, GlobalBurst: 10, PerDM: 1, PerDMBurst: 1} }

// Validate reports a rate or burst that cannot work.
func (p Pacing) Validate() error {
	if p.Global < 0 || p.PerDM < 0 || p.GlobalBurst < 0 || p.PerDMBurst < 0 {
		return errors.New("discord.pacing: rates and bursts must not be negative (leave a key out for Discord's limit)")
	}
	return nil
}

// orDefault fills the keys left out with Discord's limits.
func (p Pacing) orDefault() Pacing {
	d := DefaultPacing()
	if p.Global == 0 {
		p.Global = d.Global
	}
	if p.GlobalBurst == 0 {
		p.GlobalBurst = d.GlobalBurst
	}
	if p.PerDM == 0 {
		p.PerDM = d.PerDM
	}
	if p.PerDMBurst == 0 {
		p.PerDMBurst = d.PerDMBurst
	}
	return p
}

// Validate reports every value that cannot work, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(strings.TrimPrefix(c.Token, "Bot ")) == "" {
		errs = append(errs, errors.New("discord.token is empty: set it to the bot token from the developer portal (or KUMO_DISCORD_TOKEN), or remove the discord section"))
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("discord.api_url must be a URL, e.g. http://127.0.0.1:9000, got %q", c.APIURL))
		}
	}
	errs = append(errs, c.Pacing.Validate())
	return errors.Join(errs...)
}

type options struct {
	pace       *bridge.Gate
	perDM      rate.Limit
	perDMBurst int
}

// Option changes how the adapter works; the defaults suit the real Discord.
type Option func(*options)

// WithPacing sets how fast the adapter sends REST requests, all routes together (tests; operators
// use Config.Pacing). The default stays under Discord's global limit of 50 requests per second.
func WithPacing(r rate.Limit, burst int) Option {
	return func(o *options) { o.pace = bridge.NewGate(r, burst) }
}

// WithDMPacing sets how fast the adapter sends into one DM channel; rate.Inf turns it off (tests).
func WithDMPacing(r rate.Limit, burst int) Option {
	return func(o *options) { o.perDM, o.perDMBurst = r, burst }
}

// Adapter is the Discord platform. It implements bridge.Platform.
type Adapter struct {
	log  *slog.Logger
	s    *discordgo.Session
	pace *bridge.Gate // the bot-wide budget, shared by the core's send classes
	// perDM paces messages into one DM channel (Discord's route limit, known before its headers say).
	perDM      rate.Limit
	perDMBurst int
	// pendingTimeout is how long a slash command used in a DM waits for the core's answer.
	pendingTimeout time.Duration

	rateLimited atomic.Int64

	mu     sync.Mutex
	botID  string
	appID  string
	dms    map[string]string        // user id -> DM channel id
	dmPace map[string]*rate.Limiter // DM channel id -> its pace; idle ones are swept
	// ownDeletes are the bot's messages it deleted whose MESSAGE_DELETE has not come back yet: they
	// are no person's unsend (bounded: cleared past maxOwnDeletes).
	ownDeletes map[string]bool
	// botReactions are the bot's own reactions per channel/message, to take back (convo.go).
	botReactions map[string][]string
	pending      map[string]*pending // DM channel id -> deferred slash command awaiting its answer
	pauseUntil   time.Time           // a global 429 stops every request until then
}

// pending is a slash command used in a DM whose answer is still "thinking": the core's next message
// to that DM becomes the interaction's response.
type pending struct {
	appID, token string
	expires      time.Time
}

// Interaction tokens live 15 minutes; leave a margin.
const pendingLifetime = 14 * time.Minute

var (
	_ bridge.Platform = (*Adapter)(nil)
	_ bridge.Deleter  = (*Adapter)(nil)
	_ bridge.Inviter  = (*Adapter)(nil)
)

// New makes an adapter from a valid cfg; a nil log discards. Nothing is contacted until Run or a send.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pacing := cfg.Pacing.orDefault()
	o := options{pace: bridge.NewGate(pacing.Global, pacing.GlobalBurst), perDM: pacing.PerDM, perDMBurst: pacing.PerDMBurst}
	for _, opt := range opts {
		opt(&o)
	}
	a := &Adapter{
		log:        log.With("platform", Name),
		pace:       o.pace,
		perDM:      o.perDM,
		perDMBurst: o.perDMBurst,
		dmPace:     map[string]*rate.Limiter{},
		// The core answers in well under a second; a minute covers retries after a 429.
		pendingTimeout: time.Minute,
		dms:            map[string]string{},
		ownDeletes:     map[string]bool{},
		botReactions:   map[string][]string{},
		pending:        map[string]*pending{},
	}
	s, err := discordgo.New("Bot " + strings.TrimPrefix(cfg.Token, "Bot "))
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	tr := &transport{base: http.DefaultTransport, onGlobal: a.pauseAll}
	if cfg.APIURL != "" {
		tr.api, _ = url.Parse(cfg.APIURL) // Validate checked it
	}
	// DMs always carry their content; no privileged intent. Interactions arrive whatever the intents.
	// Reactions in DMs come only with their own intent.
	s.Identify.Intents = discordgo.IntentsDirectMessages | discordgo.IntentsDirectMessageReactions
	// discordgo retries 429s without limit by default; the bridge owns retries so that each
	// recipient's order is kept in one place, so return them instead.
	s.ShouldRetryOnRateLimit = false
	s.StateEnabled = false
	// Handlers run in the gateway's reading goroutine and only queue the event: order is kept.
	s.SyncEvents = true
	// discordgo's Endpoint* variables are package-level and computed at init: rather than touching
	// them, the transport moves requests to api_url, those for stickers' images too (the adapter
	// makes their address itself, media.go). The gateway URL comes from GET /gateway.
	s.Client = &http.Client{Timeout: 20 * time.Second, Transport: tr}
	s.Dialer = &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 10 * time.Second}
	a.s = s
	return a, nil
}

// Name implements bridge.Platform.
func (a *Adapter) Name() string { return Name }

// Limits: 2,000 code points per message, counted after escaping.
func (a *Adapter) Limits() bridge.Limits {
	return bridge.Limits{MaxText: maxContent, Overhead: overhead, LineOverhead: lineOverhead, TextLen: textLen}
}

// RateLimited is how many 429 answers Discord has given the adapter.
func (a *Adapter) RateLimited() int64 { return a.rateLimited.Load() }

// Run connects to the gateway, registers the slash commands and hands what people send the bot to h
// until ctx ends. discordgo reconnects (RESUME) by itself after a dropped connection.
func (a *Adapter) Run(ctx context.Context, h bridge.Handler) error {
	me, err := a.s.User("@me", discordgo.WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		var re *discordgo.RESTError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("discord: the bot token was refused (%w): check discord.token in the developer portal (Bot, Reset Token): %w", bridge.ErrUnauthorized, err)
		}
		return fmt.Errorf("discord: checking the bot token: %w", err)
	}
	a.mu.Lock()
	a.botID, a.appID = me.ID, me.ID
	a.mu.Unlock()

	events := make(chan any, 256)
	queue := func(ev any) {
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}
	removers := []func(){
		a.s.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
			if r.Application != nil && r.Application.ID != "" {
				a.mu.Lock()
				a.appID = r.Application.ID
				a.mu.Unlock()
			}
			a.log.Info("discord gateway ready")
		}),
		a.s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Resumed) { a.log.Info("discord gateway resumed") }),
		a.s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) { a.log.Info("discord gateway disconnected") }),
		a.s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) { queue(m) }),
		a.s.AddHandler(func(_ *discordgo.Session, i *discordgo.InteractionCreate) { queue(i) }),
		a.s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageUpdate) { queue(m) }),
		a.s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageDelete) { queue(m) }),
		a.s.AddHandler(func(_ *discordgo.Session, r *discordgo.MessageReactionAdd) { queue(r) }),
		a.s.AddHandler(func(_ *discordgo.Session, r *discordgo.MessageReactionRemove) { queue(r) }),
	}
	defer func() {
		for _, r := range removers {
			r()
		}
	}()
	if err := a.s.Open(); err != nil {
		// The gateway closes with 4004 when the token is wrong (REST said yes, so rarely: a token
		// reset between the two calls).
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == 4004 {
			return fmt.Errorf("discord: the gateway refused the bot token (%w): check discord.token in the developer portal (Bot, Reset Token)", bridge.ErrUnauthorized)
		}
		return fmt.Errorf("discord: opening the gateway: %w", err)
	}
	// Close sends a close frame and waits a second for Discord, as discordgo does.
	defer func() { _ = a.s.Close() }()

	a.mu.Lock()
	appID := a.appID
	a.mu.Unlock()
	if err := a.registerCommands(ctx, appID, bridge.MenuOf(h)); err != nil {
		// DMs still work without slash commands: say so loudly and carry on.
		a.log.Error("discord: registering slash commands failed", "err", err)
	}
	if r, ok := h.(bridge.ReadyNotifier); ok {
		r.Ready(Name)
	}
	a.log.Info("discord bot ready; invite it to a server with this URL",
		"invite", "https://discord.com/oauth2/authorize?client_id="+url.QueryEscape(appID)+"&scope=bot+applications.commands&permissions=0")

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			switch ev := ev.(type) {
			case *discordgo.MessageCreate:
				a.onMessage(ctx, h, ev.Message)
			case *discordgo.InteractionCreate:
				a.onInteraction(ctx, h, ev.Interaction)
			case *discordgo.MessageUpdate:
				a.onEdit(ctx, h, ev.Message)
			case *discordgo.MessageDelete:
				a.onDelete(ctx, h, ev.Message)
			case *discordgo.MessageReactionAdd:
				a.onReaction(ctx, h, ev.MessageReaction, bridge.ActionReact)
			case *discordgo.MessageReactionRemove:
				a.onReaction(ctx, h, ev.MessageReaction, bridge.ActionUnreact)
			}
		}
	}
}

// commands are the slash commands, made from the core's command list (the same names and texts as
// /help and Telegram's menu); each becomes the text command the core parses.
func commands(list []bridge.CommandInfo) []*discordgo.ApplicationCommand {
	contexts := []discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM}
	installs := []discordgo.ApplicationIntegrationType{discordgo.ApplicationIntegrationGuildInstall}
	var out []*discordgo.ApplicationCommand
	for _, c := range list {
		var opts []*discordgo.ApplicationCommandOption
		if o := option(c); o != nil {
			opts = append(opts, o)
		}
		out = append(out, &discordgo.ApplicationCommand{Name: c.Name, Description: describe(c.Description), Type: discordgo.ChatApplicationCommand,
			Contexts: &contexts, IntegrationTypes: &installs, Options: opts})
	}
	return out
}

// option is a command's one string option: "[password]" an optional one named password,
// "<name>" a required one, "[once|revoke]" an optional choice between those words.
func option(c bridge.CommandInfo) *discordgo.ApplicationCommandOption {
	arg := strings.Trim(c.Args, "[]<>")
	if arg == "" {
		return nil
	}
	// Option names are one word: "<creator key>" is the option "key".
	arg = arg[strings.LastIndexByte(arg, ' ')+1:]
	o := &discordgo.ApplicationCommandOption{Type: discordgo.ApplicationCommandOptionString, Name: arg,
		Description: describe(c.ArgDescription), Required: strings.HasPrefix(c.Args, "<")}
	if words := strings.Split(arg, "|"); len(words) > 1 {
		o.Name = "what"
		for _, w := range words {
			o.Choices = append(o.Choices, &discordgo.ApplicationCommandOptionChoice{Name: w, Value: w})
		}
	}
	if o.Description == "" {
		o.Description = o.Name
	}
	return o
}

// describe fits a text into Discord's 1-100 characters for descriptions.
func describe(s string) string {
	if r := []rune(s); len(r) > 100 {
		return string(r[:99]) + "…"
	}
	return s
}

func (a *Adapter) registerCommands(ctx context.Context, appID string, list []bridge.CommandInfo) error {
	if err := a.wait(ctx); err != nil {
		return err
	}
	_, err := a.s.ApplicationCommandBulkOverwrite(appID, "", commands(list), discordgo.WithContext(ctx))
	return err
}

// commandText turns a slash command into the text command the core parses.
func commandText(d discordgo.ApplicationCommandInteractionData) string {
	text := "/" + d.Name
	for _, o := range d.Options {
		if o != nil && o.Type == discordgo.ApplicationCommandOptionString {
			if v := strings.TrimSpace(o.StringValue()); v != "" {
				text += " " + v
			}
		}
	}
	return text
}

// InviteLink implements bridge.Inviter. Discord has no deep link that carries a payload into a
// bot's DM: the link opens the bot's profile (Message starts the DM) and the person sends the token.
func (a *Adapter) InviteLink(token string) (string, bool) {
	a.mu.Lock()
	botID := a.botID
	a.mu.Unlock()
	if botID == "" {
		return "", false
	}
	return "https://discord.com/users/" + botID + " then send the bot: /join " + token, true
}

func (a *Adapter) onMessage(ctx context.Context, h bridge.Handler, m *discordgo.Message) {
	a.mu.Lock()
	botID := a.botID
	a.mu.Unlock()
	// Only people's DMs: never the bot's own messages, other bots, servers, or system messages.
	if m.Author == nil || m.Author.ID == botID || m.Author.Bot || m.GuildID != "" ||
		(m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply) {
		return
	}
	a.rememberDM(m.Author.ID, m.ChannelID)
	from := bridge.Addr{Platform: Name, User: m.Author.ID, Chat: m.ChannelID}
	stickers, lines, other := a.stickers(m.StickerItems)
	text := withLines(m.Content, lines)
	if atts := append(a.attachments(m), stickers...); len(atts) > 0 {
		// Files, photos, voice messages and stickers go with the text as their caption (media.go).
		h.HandleInbound(ctx, bridge.Inbound{From: from, Text: text, ID: bridge.MessageID(m.ID), Attachments: atts})
	} else if text != "" {
		in := bridge.Inbound{From: from, Text: text, ID: bridge.MessageID(m.ID)}
		if m.Type == discordgo.MessageTypeReply && m.MessageReference != nil {
			in.ReplyTo = bridge.MessageID(m.MessageReference.MessageID)
		}
		h.HandleInbound(ctx, in)
	}
	// A sticker of a format newer than this code, and a message with nothing kumo relays, are not
	// relayed; the core tells the sender so.
	if other || (m.Content == "" && len(m.Attachments) == 0 && len(m.Embeds) == 0 && len(m.StickerItems) == 0) {
		h.HandleInbound(ctx, bridge.Inbound{From: from, NonText: true, ID: bridge.MessageID(m.ID)})
	}
}

// withLines is a message's text with the lines that stand in for its stickers without an image
// after it: what is relayed, and what an edit of it relays again.
func withLines(content string, lines []string) string {
	for _, l := range lines {
		if content != "" {
			content += "\n"
		}
		content += l
	}
	return content
}

func (a *Adapter) onInteraction(ctx context.Context, h bridge.Handler, i *discordgo.Interaction) {
	if i.Type != discordgo.InteractionApplicationCommand {
		return
	}
	user := i.User
	if i.Member != nil && i.Member.User != nil {
		user = i.Member.User
	}
	if user == nil {
		return
	}
	text := commandText(i.ApplicationCommandData())
	none := &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}

	if i.GuildID != "" {
		// In a server: say so privately, and continue in the DM, where rooms live.
		err := a.s.InteractionRespond(i, &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseChannelMessageWithSource,
			Data: &discordgo.InteractionResponseData{Content: "Continuing in your DMs.", Flags: discordgo.MessageFlagsEphemeral, AllowedMentions: none},
		}, discordgo.WithContext(ctx))
		if err != nil {
			a.log.Warn("discord: answering a slash command failed", "err", err)
		}
		ch, err := a.dmChannel(ctx, user.ID)
		if err != nil {
			a.log.Warn("discord: opening a DM failed", "err", err)
			return
		}
		h.HandleInbound(ctx, bridge.Inbound{From: bridge.Addr{Platform: Name, User: user.ID, Chat: ch}, Text: text})
		return
	}

	// In the DM: "thinking..." now; the core's answer becomes the interaction's response.
	err := a.s.InteractionRespond(i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource},
		discordgo.WithContext(ctx))
	a.rememberDM(user.ID, i.ChannelID)
	if err != nil {
		a.log.Warn("discord: deferring a slash command failed", "err", err)
	} else {
		p := &pending{appID: i.AppID, token: i.Token, expires: time.Now().Add(pendingLifetime)}
		a.mu.Lock()
		a.pending[i.ChannelID] = p
		a.mu.Unlock()
		// Should the core send nothing (it always answers a command, but a flood limit may swallow one),
		// do not leave "thinking..." up until Discord gives up on it.
		time.AfterFunc(a.pendingTimeout, func() { a.dropPending(i.ChannelID, p) })
	}
	h.HandleInbound(ctx, bridge.Inbound{From: bridge.Addr{Platform: Name, User: user.ID, Chat: i.ChannelID}, Text: text})
}

func (a *Adapter) rememberDM(user, channel string) {
	a.mu.Lock()
	a.dms[user] = channel
	a.mu.Unlock()
}

// dmChannel is the DM channel with a user, opened if needed.
func (a *Adapter) dmChannel(ctx context.Context, user string) (string, error) {
	a.mu.Lock()
	ch, ok := a.dms[user]
	a.mu.Unlock()
	if ok {
		return ch, nil
	}
	if err := a.wait(ctx); err != nil {
		return "", err
	}
	c, err := a.s.UserChannelCreate(user, discordgo.WithContext(ctx))
	if err != nil {
		return "", a.classify(err)
	}
	a.rememberDM(user, c.ID)
	return c.ID, nil
}

// SendText shows m in the DM at to.
// Its id is Discord's message id (the DM channel is the bridge.Addr's Chat).
func (a *Adapter) SendText(ctx context.Context, to bridge.Addr, m bridge.Message) (bridge.MessageID, error) {
	return a.sendRef(ctx, to, render(m), nil, string(m.ReplyTo))
}

// SendImage shows img with m as its caption (the invoice: QR code attached, BOLT11 in a code block).
func (a *Adapter) SendImage(ctx context.Context, to bridge.Addr, img bridge.Image, m bridge.Message) ([]bridge.MessageID, error) {
	name := img.Name
	if name == "" {
		name = "image.png"
	}
	id, err := a.send(ctx, to, render(m), []*discordgo.File{{Name: name, ContentType: "image/png", Reader: bytes.NewReader(img.PNG)}})
	if err != nil {
		return nil, err
	}
	return []bridge.MessageID{id}, nil
}

func (a *Adapter) send(ctx context.Context, to bridge.Addr, content string, files []*discordgo.File) (bridge.MessageID, error) {
	return a.sendRef(ctx, to, content, files, "")
}

// sendRef is send, as a native reply to message replyTo of the DM when it is set.
func (a *Adapter) sendRef(ctx context.Context, to bridge.Addr, content string, files []*discordgo.File, replyTo string) (bridge.MessageID, error) {
	if n := utf8.RuneCountInString(content); n > maxContent {
		return "", fmt.Errorf("discord: a message of %d characters is over Discord's limit: %w", n, bridge.ErrRejected)
	}
	ch := to.Chat
	if ch == "" {
		var err error
		if ch, err = a.dmChannel(ctx, to.User); err != nil {
			return "", err
		}
	}
	none := &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
	// A deferred slash command is answered through its interaction's webhook, a route of its own.
	if p := a.takePending(ch); p != nil {
		if err := a.wait(ctx); err != nil {
			return "", err
		}
		msg, err := a.s.WebhookMessageEdit(p.appID, p.token, "@original",
			&discordgo.WebhookEdit{Content: &content, Files: files, AllowedMentions: none}, discordgo.WithContext(ctx))
		if err == nil {
			return idOf(msg), nil
		}
		err = a.classify(err)
		var rl *bridge.RateLimitError
		if errors.As(err, &rl) {
			a.mu.Lock()
			a.pending[ch] = p
			a.mu.Unlock()
			return "", err
		}
		// The interaction expired or failed: send a plain message instead.
		a.log.Debug("discord: answering a deferred slash command failed; sending a message", "err", err)
		for _, f := range files {
			if r, ok := f.Reader.(io.Seeker); ok {
				_, _ = r.Seek(0, io.SeekStart)
			}
		}
	}
	if err := a.waitDM(ctx, ch); err != nil {
		return "", err
	}
	if err := a.wait(ctx); err != nil {
		return "", err
	}
	send := &discordgo.MessageSend{
		Content: content, Files: files, AllowedMentions: none,
		// Relayed links must not unfurl: a preview fetches the page and shows it to everyone.
		Flags: discordgo.MessageFlagsSuppressEmbeds,
	}
	if replyTo != "" {
		// A copy deleted meanwhile makes a plain message rather than a refused one.
		send.Reference = &discordgo.MessageReference{MessageID: replyTo, ChannelID: ch, FailIfNotExists: new(bool)}
	}
	msg, err := a.s.ChannelMessageSendComplex(ch, send, discordgo.WithContext(ctx))
	if err != nil {
		return "", a.classify(err)
	}
	return idOf(msg), nil
}

// DeleteBatch is 1: bulk delete is for servers only, a DM takes one DELETE per message.
func (a *Adapter) DeleteBatch() int { return 1 }

// DeletesTheirs is always false: Discord lets no bot delete a person's DM messages (50003 "Cannot
// execute action on a DM channel"), and every such try is a 403 that counts toward the ban Discord
// gives a bot for 10,000 invalid requests in 10 minutes.
func (a *Adapter) DeletesTheirs(context.Context, bridge.Addr) bool { return false }

// DeleteMessages deletes the bot's own messages ids from the DM at to, one request each. discordgo
// paces them under the channel's delete bucket from Discord's X-RateLimit headers (observed: 5 per
// second) and the adapter under the global limit; a 429 comes back as a *bridge.RateLimitError for
// the bridge to call again with the same ids. A message already gone (10008) counts as deleted.
func (a *Adapter) DeleteMessages(ctx context.Context, to bridge.Addr, ids []bridge.MessageID) error {
	ch := to.Chat
	if ch == "" {
		var err error
		if ch, err = a.dmChannel(ctx, to.User); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if err := a.wait(ctx); err != nil {
			return err
		}
		a.markOwnDelete(string(id))
		err := a.s.ChannelMessageDelete(ch, string(id), discordgo.WithContext(ctx))
		if err != nil && !isCode(err, codeUnknownMessage) {
			return a.classify(err)
		}
	}
	return nil
}

// isCode reports whether err is Discord's answer with JSON error code code.
func isCode(err error, code int) bool {
	var re *discordgo.RESTError
	return errors.As(err, &re) && re.Message != nil && re.Message.Code == code
}

// idOf is the bridge's id of a message Discord returned: its snowflake.
func idOf(m *discordgo.Message) bridge.MessageID {
	if m == nil {
		return ""
	}
	return bridge.MessageID(m.ID)
}

// dropPending removes the "thinking..." placeholder of p if nothing answered it.
func (a *Adapter) dropPending(ch string, p *pending) {
	a.mu.Lock()
	still := a.pending[ch] == p
	if still {
		delete(a.pending, ch)
	}
	a.mu.Unlock()
	if !still {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.s.WebhookMessageDelete(p.appID, p.token, "@original", discordgo.WithContext(ctx)); err != nil {
		a.log.Debug("discord: removing an unanswered slash command's placeholder failed", "err", err)
	}
}

func (a *Adapter) takePending(ch string) *pending {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending[ch]
	delete(a.pending, ch)
	if p == nil || time.Now().After(p.expires) {
		return nil
	}
	return p
}

// waitDM paces messages into one DM channel under Discord's per-route limit.
func (a *Adapter) waitDM(ctx context.Context, ch string) error {
	if a.perDM == rate.Inf || a.perDM <= 0 {
		return nil
	}
	a.mu.Lock()
	l := a.dmPace[ch]
	if l == nil {
		if len(a.dmPace) >= 4096 {
			// Forget channels whose bucket is full again: a fresh limiter behaves the same.
			for id, cl := range a.dmPace {
				if cl.Tokens() >= float64(cl.Burst()) {
					delete(a.dmPace, id)
				}
			}
		}
		l = rate.NewLimiter(a.perDM, max(1, a.perDMBurst))
		a.dmPace[ch] = l
	}
	a.mu.Unlock()
	if err := l.Wait(ctx); err != nil {
		return fmt.Errorf("discord: %w", err)
	}
	return nil
}

// wait paces requests under the global limit and holds them while a global 429 lasts.
func (a *Adapter) wait(ctx context.Context) error {
	if err := a.pace.Wait(ctx); err != nil {
		return fmt.Errorf("discord: %w", err)
	}
	a.mu.Lock()
	until := a.pauseUntil
	a.mu.Unlock()
	if d := time.Until(until); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("discord: %w", ctx.Err())
		}
	}
	return nil
}

func (a *Adapter) pauseAll(d time.Duration) {
	a.mu.Lock()
	if until := time.Now().Add(d); until.After(a.pauseUntil) {
		a.pauseUntil = until
	}
	a.mu.Unlock()
}

// Discord's JSON error codes that mean the person cannot be reached.
const (
	codeUnknownChannel    = 10003
	codeUnknownMessage    = 10008
	codeUnknownUser       = 10013
	codeCannotMessageUser = 50007
)

// classify translates discordgo's errors into what the bridge acts on.
func (a *Adapter) classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *discordgo.RateLimitError
	if errors.As(err, &rl) {
		a.rateLimited.Add(1)
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		a.log.Warn("discord: rate limited", "retry_after", wait, "bucket", rl.Bucket)
		return &bridge.RateLimitError{RetryAfter: wait, Err: err}
	}
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil {
		code := 0
		if re.Message != nil {
			code = re.Message.Code
		}
		status := re.Response.StatusCode
		switch {
		case code == codeCannotMessageUser || code == codeUnknownChannel || code == codeUnknownUser:
			return fmt.Errorf("discord: HTTP %d, code %d: %w (%w)", status, code, bridge.ErrRecipientGone, err)
		case status == http.StatusUnauthorized:
			// A bad token is no fault of the message: keep it for when the token works.
			return fmt.Errorf("discord: unauthorized: %w", err)
		case status >= 400 && status < 500:
			return fmt.Errorf("discord: HTTP %d, code %d: %w (%w)", status, code, bridge.ErrRejected, err)
		}
	}
	return fmt.Errorf("discord: %w", err)
}

// resetPad is added to every bucket's X-RateLimit-Reset-After. discordgo turns the header into whole
// milliseconds by truncating a float (0.049 s becomes 48 ms), so without it the next request of an
// exhausted bucket can leave a millisecond early and earn a 429, and every 429 counts toward the ban
// Discord gives a bot for 10,000 invalid requests in 10 minutes. Against a 1 s delete bucket 5 ms
// costs half a percent of throughput.
const resetPad = 5 * time.Millisecond

func padResetAfter(h http.Header) {
	v := h.Get("X-RateLimit-Reset-After")
	if v == "" {
		return
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return
	}
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs+resetPad.Seconds(), 'f', 3, 64))
}

// transport moves requests for discord.com and for stickers' images (stickerHost) to api_url
// (tests), and watches for global 429s, which discordgo's RateLimitError does not tell apart from a
// route's. Attachments need no moving: their address comes with the message.
type transport struct {
	base     http.RoundTripper
	api      *url.URL
	onGlobal func(time.Duration)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.api != nil && (req.URL.Host == "discord.com" || req.URL.Host == stickerHost) {
		req = req.Clone(req.Context())
		req.URL.Scheme = t.api.Scheme
		req.URL.Host = t.api.Host
		req.URL.Path = strings.TrimSuffix(t.api.Path, "/") + req.URL.Path
		req.Host = ""
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	padResetAfter(resp.Header)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-RateLimit-Global") != "true" {
		return resp, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil
	}
	var tm struct {
		RetryAfter float64 `json:"retry_after"`
	}
	if json.Unmarshal(body, &tm) == nil && tm.RetryAfter > 0 {
		t.onGlobal(time.Duration(tm.RetryAfter * float64(time.Second)))
	}
	return resp, nil
}
