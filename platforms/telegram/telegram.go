// Package telegram connects kumo to Telegram through the Bot API (github.com/go-telegram/bot), in
// private chats with the bot only. It translates updates into bridge.Inbound and bridge.Message into
// HTML messages with every special character escaped, paces itself under Telegram's limits and
// tells the bridge how a send failed; the bridge owns retries and ordering.
package telegram

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/bridge"
)

// Name is the platform's name in bridge.Addr.
const Name = "telegram"

// Telegram's limits: 4096 UTF-16 code units of text after entity parsing, 1024 for a caption.
const (
	maxText    = 4096
	maxCaption = 1024
)

// Config is the `telegram:` section of kumo's configuration.
type Config struct {
	// Token is the bot's token, from @BotFather.
	Token string `yaml:"token" secret:"true"`
	// APIURL points at a self-hosted Bot API server (or a test fake); empty means api.telegram.org.
	APIURL string `yaml:"api_url"`
	// Pacing is how fast kumo sends (telegram.pacing.*); a key left out keeps Telegram's own limit
	// (DefaultPacing). A bot that Telegram granted higher limits (paid broadcasts) may raise them.
	Pacing Pacing `yaml:"pacing"`
}

// Validate reports every value that cannot work, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Token) == "" {
		errs = append(errs, errors.New("telegram.token is empty: set it to the token @BotFather gave you (or KUMO_TELEGRAM_TOKEN), or remove the telegram section"))
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("telegram.api_url must be an http(s) URL, e.g. http://127.0.0.1:8081, got %q", c.APIURL))
		}
	}
	errs = append(errs, c.Pacing.Validate())
	return errors.Join(errs...)
}

// Pacing is how fast the adapter sends. Telegram allows about 30 messages per second per bot and
// about one per second in one chat, with short bursts.
type Pacing struct {
	Global       rate.Limit `yaml:"global"`         // messages per second over all chats
	GlobalBurst  int        `yaml:"global_burst"`   // how many of them may go at once
	PerChat      rate.Limit `yaml:"per_chat"`       // messages per second into one chat
	PerChatBurst int        `yaml:"per_chat_burst"` // how many of them may go at once
	// Delete paces deleteMessage(s) calls over all chats (zero: unpaced).
	Delete      rate.Limit `yaml:"delete"`
	DeleteBurst int        `yaml:"delete_burst"`
}

// DefaultPacing stays under Telegram's published limits ("avoid sending more than one message per
// second" into one chat; "no more than 30 messages per second" in all): 1/s per chat, 30/s over all
// chats, evenly spread. Telegram tolerates bursts of about 3 into a chat; kumo's bursts stay at 2
// so that a chat kept busy at exactly 1/s (a coalesced backlog) keeps one message of slack for
// timing jitter (the wait on the bot-wide budget, the network) instead of meeting a 429.
func DefaultPacing() Pacing {
	return Pacing{Global: 30, GlobalBurst: 1, PerChat: 1, PerChatBurst: 2, Delete: 30, DeleteBurst: 10}
}

// Validate reports a rate or burst that cannot work.
func (p Pacing) Validate() error {
	if p.Global < 0 || p.PerChat < 0 || p.GlobalBurst < 0 || p.PerChatBurst < 0 || p.Delete < 0 || p.DeleteBurst < 0 {
		return errors.New("telegram.pacing: rates and bursts must not be negative (leave a key out for Telegram's limit)")
	}
	return nil
}

// orDefault fills the keys left out with Telegram's limits.
func (p Pacing) orDefault() Pacing {
	d := DefaultPacing()
	if p.Global == 0 {
		p.Global, p.GlobalBurst = d.Global, max(p.GlobalBurst, d.GlobalBurst)
	}
	if p.GlobalBurst == 0 {
		p.GlobalBurst = d.GlobalBurst
	}
	if p.PerChat == 0 {
		p.PerChat, p.PerChatBurst = d.PerChat, max(p.PerChatBurst, d.PerChatBurst)
	}
	if p.PerChatBurst == 0 {
		p.PerChatBurst = d.PerChatBurst
	}
	if p.Delete == 0 {
		p.Delete = d.Delete
	}
	if p.DeleteBurst == 0 {
		p.DeleteBurst = d.DeleteBurst
	}
	return p
}

type options struct {
	pacing      Pacing
	pollTimeout time.Duration
	client      *http.Client
}

// Option changes how the adapter works; the defaults suit the real Telegram.
type Option func(*options)

// WithPacing sets the sending rates (tests and benchmarks match them to their fake server).
func WithPacing(p Pacing) Option { return func(o *options) { o.pacing = p } }

// WithPolling sets the long-poll duration and the HTTP client; the client's timeout must be longer
// than pollTimeout. Polls shorter than 2 s make the library busy-loop.
func WithPolling(pollTimeout time.Duration, client *http.Client) Option {
	return func(o *options) { o.pollTimeout, o.client = pollTimeout, client }
}

// Adapter is the Telegram platform. It implements bridge.Platform.
type Adapter struct {
	log    *slog.Logger
	bot    *bot.Bot
	http   bot.HttpClient // the Bot API's client, also for file downloads (media.go)
	pacing Pacing
	global *bridge.Gate // the bot-wide budget, shared by the core's send classes
	// deletes paces deleteMessage(s) calls, apart from sends: Telegram documents no delete limit,
	// so the wipe stays at the overall send rate and never takes a chat's send budget.
	deletes *rate.Limiter

	running atomic.Bool
	handler bridge.Handler // set by Run before polling starts
	botName atomic.Pointer[string]

	mu      sync.Mutex
	chats   map[int64]*rate.Limiter // per-chat pacing; idle ones are swept
	groups  map[int64]bool          // groups already told that kumo only works in a DM
	sideJob sync.WaitGroup          // group answers in flight
}

var (
	_ bridge.Platform = (*Adapter)(nil)
	_ bridge.Inviter  = (*Adapter)(nil)
)

// New makes the adapter from a valid cfg; a nil log discards. It does not contact Telegram: Run checks
// the token.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := options{pacing: cfg.Pacing.orDefault(), pollTimeout: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	a := &Adapter{
		log:    log.With("platform", Name),
		pacing: o.pacing,
		chats:  map[int64]*rate.Limiter{},
		groups: map[int64]bool{},
	}
	if o.pacing.Global > 0 {
		a.global = bridge.NewGate(o.pacing.Global, o.pacing.GlobalBurst)
	}
	if o.pacing.Delete > 0 {
		a.deletes = rate.NewLimiter(o.pacing.Delete, max(1, o.pacing.DeleteBurst))
	}
	bopts := []bot.Option{
		bot.WithSkipGetMe(), // Run does it, with its context
		// One update at a time, in order: the bridge keeps each sender's order from here on.
		bot.WithNotAsyncHandlers(),
		bot.WithDefaultHandler(a.onUpdate),
		bot.WithErrorsHandler(a.onPollError),
		// Reactions come only to a bot that asks for them.
		bot.WithAllowedUpdates(bot.AllowedUpdates{models.AllowedUpdateMessage, models.AllowedUpdateEditedMessage, models.AllowedUpdateMessageReaction}),
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: o.pollTimeout + 10*time.Second}
	}
	a.http = o.client
	bopts = append(bopts, bot.WithHTTPClient(o.pollTimeout, o.client))
	if cfg.APIURL != "" {
		bopts = append(bopts, bot.WithServerURL(strings.TrimRight(cfg.APIURL, "/")))
	}
	b, err := bot.New(cfg.Token, bopts...)
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	a.bot = b
	return a, nil
}

// Name implements bridge.Platform.
func (a *Adapter) Name() string { return Name }

// overhead is what rendering adds to a message's visible text: a part counter such as " (12/34)".
// Tags and HTML escapes do not count (Telegram measures the parsed text), and the bridge budgets
// the notice mark and a relay's "pseudonym: " itself.
const overhead = 12

// Limits implements bridge.Platform.
func (a *Adapter) Limits() bridge.Limits {
	return bridge.Limits{MaxText: maxText, Overhead: overhead}
}

// menu is the command menu Telegram shows, from the core's list of commands.
func menu(cmds []bridge.CommandInfo) []models.BotCommand {
	var out []models.BotCommand
	for _, c := range cmds {
		d := c.Description
		if c.Args != "" {
			d = c.Args + ": " + d
		}
		if len([]rune(d)) > 256 {
			d = string([]rune(d)[:255]) + "…"
		}
		out = append(out, models.BotCommand{Command: c.Name, Description: d})
	}
	return out
}

// Run implements bridge.Platform: it checks the token, sets the command menu and long-polls until
// ctx ends.
func (a *Adapter) Run(ctx context.Context, h bridge.Handler) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("telegram: Run called twice")
	}
	// The bridge runs it again after a failure (Telegram unreachable at start).
	defer a.running.Store(false)
	me, err := a.bot.GetMe(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, bot.ErrorUnauthorized) {
			return fmt.Errorf("telegram: the bot token was refused (%w): check telegram.token with @BotFather (/mybots, API Token)", bridge.ErrUnauthorized)
		}
		return fmt.Errorf("telegram: getMe: %w", redact(err))
	}
	name := me.Username
	a.botName.Store(&name)
	a.log.Info("telegram bot connected", "bot", me.Username)
	// A webhook left behind by another deployment makes getUpdates fail with 409.
	if _, err := a.bot.DeleteWebhook(ctx, &bot.DeleteWebhookParams{}); err != nil && ctx.Err() == nil {
		a.log.Warn("telegram: deleteWebhook failed", "err", err)
	}
	if _, err := a.bot.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: menu(bridge.MenuOf(h))}); err != nil && ctx.Err() == nil {
		// Not fatal: commands still work when typed, only the menu is missing.
		a.log.Warn("telegram: setMyCommands failed", "err", err)
	}
	a.handler = h
	if r, ok := h.(bridge.ReadyNotifier); ok {
		r.Ready(Name)
	}
	a.bot.Start(ctx) // returns when ctx ends
	a.sideJob.Wait()
	return nil
}

// onPollError logs the library's polling errors without anything a response body might hold.
func (a *Adapter) onPollError(err error) {
	a.log.Warn("telegram: polling error", "err", redact(err))
}

func (a *Adapter) onUpdate(ctx context.Context, _ *bot.Bot, upd *models.Update) {
	if upd.MessageReaction != nil {
		a.onReaction(ctx, upd.MessageReaction)
		return
	}
	msg, edited := upd.Message, false
	if msg == nil && upd.EditedMessage != nil {
		msg, edited = upd.EditedMessage, true
	}
	if msg == nil || msg.From == nil || msg.From.IsBot {
		return
	}
	if msg.Chat.Type != models.ChatTypePrivate {
		a.answerGroup(ctx, msg.Chat.ID)
		return
	}
	in := bridge.Inbound{From: bridge.Addr{
		Platform: Name,
		User:     strconv.FormatInt(msg.From.ID, 10),
		Chat:     strconv.FormatInt(msg.Chat.ID, 10),
	}, ID: bridge.MessageID(strconv.Itoa(msg.ID))}
	if msg.ReplyToMessage != nil {
		in.ReplyTo = bridge.MessageID(strconv.Itoa(msg.ReplyToMessage.ID))
	}
	if edited {
		if msg.Text == "" {
			return // a caption edited: kumo relayed no media, so there is nothing to edit
		}
		in.Action, in.Target, in.Text = bridge.ActionEdit, in.ID, msg.Text
		a.handler.HandleInbound(ctx, in)
		return
	}
	if msg.Text != "" {
		in.Text = msg.Text
	} else if atts := a.attachments(msg); len(atts) > 0 {
		in.Text, in.Attachments = msg.Caption, atts
	} else {
		// Photos, stickers, voice notes, files...: the bridge tells the sender only text is relayed.
		in.NonText = true
	}
	a.handler.HandleInbound(ctx, in)
	if startPayload(in.Text) {
		// A tapped invite link (t.me/<bot>?start=<token>) leaves "/start <token>" in the chat: the
		// token must not stay on the person's screen, so it goes at once.
		a.deleteAsync(ctx, in.From, in.ID)
	}
}

// startPayload says whether text is a deep link's "/start <payload>".
func startPayload(text string) bool {
	cmd, payload, ok := strings.Cut(text, " ")
	return ok && strings.TrimSpace(payload) != "" && (cmd == "/start" || strings.HasPrefix(cmd, "/start@"))
}

func (a *Adapter) deleteAsync(ctx context.Context, to bridge.Addr, id bridge.MessageID) {
	a.sideJob.Add(1)
	go func() {
		defer a.sideJob.Done()
		for attempt := 0; ; attempt++ {
			err := a.DeleteMessages(ctx, to, []bridge.MessageID{id})
			var rl *bridge.RateLimitError
			if err == nil || ctx.Err() != nil {
				return
			}
			if !errors.As(err, &rl) || attempt >= 3 {
				a.log.Warn("telegram: could not delete a /start message", "err", err)
				return
			}
			select {
			case <-time.After(rl.RetryAfter):
			case <-ctx.Done():
				return
			}
		}
	}()
}

// InviteLink implements bridge.Inviter: Telegram's deep link, which opens the bot's chat and sends
// "/start <token>" when tapped. The token (22 characters of base64url) fits the payload's 64
// characters of A-Za-z0-9_-. There is none until getMe told the bot's username.
func (a *Adapter) InviteLink(token string) (string, bool) {
	n := a.botName.Load()
	if n == nil || *n == "" {
		return "", false
	}
	return "https://t.me/" + *n + "?start=" + token, true
}

// answerGroup tells a group, once, that kumo only works in a private chat, and relays nothing.
func (a *Adapter) answerGroup(ctx context.Context, chatID int64) {
	a.mu.Lock()
	if a.groups[chatID] {
		a.mu.Unlock()
		return
	}
	if len(a.groups) > 10000 { // bounded memory; a group may hear it twice after this
		clear(a.groups)
	}
	a.groups[chatID] = true
	a.mu.Unlock()
	text := "kumo only works in a private chat with me."
	if n := a.botName.Load(); n != nil && *n != "" {
		text += " Write to me here: https://t.me/" + *n
	}
	a.sideJob.Add(1)
	go func() {
		defer a.sideJob.Done()
		err := a.send(ctx, chatID, func() error {
			_, err := a.bot.SendMessage(ctx, &bot.SendMessageParams{ChatID: chatID, Text: text})
			return err
		})
		if err != nil && ctx.Err() == nil {
			a.log.Warn("telegram: could not answer a group", "err", err)
		}
	}()
}

// SendText implements bridge.Platform. A message's id is its message_id in the chat.
func (a *Adapter) SendText(ctx context.Context, to bridge.Addr, m bridge.Message) (bridge.MessageID, error) {
	chatID, err := chatOf(to)
	if err != nil {
		return "", err
	}
	text := render(m)
	if text == "" {
		return "", fmt.Errorf("telegram: %w: empty message", bridge.ErrRejected)
	}
	var sent *models.Message
	err = a.send(ctx, chatID, func() (err error) {
		sent, err = a.bot.SendMessage(ctx, &bot.SendMessageParams{
			ChatID:             chatID,
			Text:               text,
			ParseMode:          models.ParseModeHTML,
			LinkPreviewOptions: &models.LinkPreviewOptions{IsDisabled: bot.True()},
			// A member's words cannot be forwarded or saved out of the room. Only relays: the
			// password and invoices must stay copyable.
			ProtectContent:  m.Kind == bridge.KindRelay,
			ReplyParameters: replyOf(m),
		})
		return err
	})
	return idOf(sent), err
}

// SendImage implements bridge.Platform. An invoice's caption holds the amount, the expiry and the
// BOLT11 string in monospace (one tap copies it); if that does not fit a caption, the BOLT11 follows
// in its own message.
func (a *Adapter) SendImage(ctx context.Context, to bridge.Addr, img bridge.Image, m bridge.Message) ([]bridge.MessageID, error) {
	chatID, err := chatOf(to)
	if err != nil {
		return nil, err
	}
	png := img.PNG
	if len(png) == 0 && m.Invoice != nil {
		png = m.Invoice.QR
	}
	if len(png) == 0 {
		return nil, fmt.Errorf("telegram: %w: empty image", bridge.ErrRejected)
	}
	name := img.Name
	if name == "" {
		name = "image.png"
	}
	caption, rest := renderCaption(m, time.Now())
	var sent *models.Message
	err = a.send(ctx, chatID, func() (err error) {
		sent, err = a.bot.SendPhoto(ctx, &bot.SendPhotoParams{
			ChatID:    chatID,
			Photo:     &models.InputFileUpload{Filename: name, Data: bytes.NewReader(png)},
			Caption:   caption,
			ParseMode: models.ParseModeHTML,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	ids := []bridge.MessageID{idOf(sent)}
	if rest == "" {
		return ids, nil
	}
	id, err := a.SendText(ctx, to, bridge.Message{Kind: bridge.KindReply, Code: rest})
	if id != "" {
		ids = append(ids, id)
	}
	return ids, err
}

// idOf is the bridge's id of a message the Bot API returned: its message_id.
func idOf(m *models.Message) bridge.MessageID {
	if m == nil || m.ID == 0 {
		return ""
	}
	return bridge.MessageID(strconv.Itoa(m.ID))
}

func chatOf(to bridge.Addr) (int64, error) {
	id, err := strconv.ParseInt(to.Chat, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("telegram: %w: not a chat id", bridge.ErrRejected)
	}
	return id, nil
}

// send paces one message to chatID and classifies its error for the bridge.
func (a *Adapter) send(ctx context.Context, chatID int64, call func() error) error {
	// The chat's own pace first, so a slow chat does not hold a token of the global budget.
	if err := a.chatLimiter(chatID).Wait(ctx); err != nil {
		return fmt.Errorf("telegram: pacing: %w", err)
	}
	if a.global != nil {
		if err := a.global.Wait(ctx); err != nil {
			return fmt.Errorf("telegram: pacing: %w", err)
		}
	}
	return classify(call())
}

func (a *Adapter) chatLimiter(chatID int64) *rate.Limiter {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.chats[chatID]
	if l != nil {
		return l
	}
	if len(a.chats) >= 4096 {
		// Forget chats whose bucket is full again: they have been idle long enough that a fresh
		// limiter behaves the same.
		for id, cl := range a.chats {
			if cl.Tokens() >= float64(cl.Burst()) {
				delete(a.chats, id)
			}
		}
	}
	if a.pacing.PerChat > 0 {
		l = rate.NewLimiter(a.pacing.PerChat, max(1, a.pacing.PerChatBurst))
	} else {
		l = rate.NewLimiter(rate.Inf, 1)
	}
	a.chats[chatID] = l
	return l
}

// classify maps the Bot API's answers onto the bridge's error contract.
func classify(err error) error {
	if err == nil {
		return nil
	}
	err = redact(err)
	var tooMany *bot.TooManyRequestsError
	if errors.As(err, &tooMany) { // bot.IsTooManyRequestsError does not unwrap
		wait := time.Duration(tooMany.RetryAfter) * time.Second
		if wait <= 0 {
			wait = time.Second
		}
		return &bridge.RateLimitError{RetryAfter: wait, Err: err}
	}
	var migrated *bot.MigrateError
	switch {
	case errors.Is(err, bot.ErrorForbidden):
		// "bot was blocked by the user", "user is deactivated", "bot can't initiate conversation".
		return fmt.Errorf("telegram: %w: %w", bridge.ErrRecipientGone, err)
	case errors.As(err, &migrated):
		return fmt.Errorf("telegram: %w: %w", bridge.ErrRecipientGone, err)
	case errors.Is(err, bot.ErrorBadRequest):
		if strings.Contains(err.Error(), "chat not found") {
			return fmt.Errorf("telegram: %w: %w", bridge.ErrRecipientGone, err)
		}
		return fmt.Errorf("telegram: %w: %w", bridge.ErrRejected, err)
	}
	return fmt.Errorf("telegram: %w", err)
}

// redact drops what the library copies from a response body into its errors ("error decode response
// body for method X, <body>, ..."): a body can hold message text, which never goes to a log.
func redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if i := strings.Index(msg, "error decode response body for method "); i >= 0 {
		method := strings.SplitN(msg[i+len("error decode response body for method "):], ",", 2)[0]
		return fmt.Errorf("undecodable Bot API response for method %s", method)
	}
	return err
}

// replyOf is a native reply to the recipient's copy; a copy deleted meanwhile makes a plain message
// rather than a refused one.
func replyOf(m bridge.Message) *models.ReplyParameters {
	id, err := strconv.Atoi(string(m.ReplyTo))
	if m.ReplyTo == "" || err != nil {
		return nil
	}
	return &models.ReplyParameters{MessageID: id, AllowSendingWithoutReply: true}
}

// render turns a message into Telegram HTML. Everything from people is escaped, so nothing a member
// types becomes formatting or a link.
func render(m bridge.Message) string {
	esc := html.EscapeString
	var b strings.Builder
	if m.Quote != "" && replyOf(m) == nil {
		// No copy to reply to: a short quote of the original, in italics, stands in.
		b.WriteString("<i>" + esc(m.Quote) + "</i>\n")
	}
	switch m.Kind {
	case bridge.KindRelay:
		// A text of several lines goes in a quote under its sender's bold name, so none of its lines
		// can pass for a line of the bot's own ("🔔 Proud Wolf left." on a line by itself). ":\n"
		// is as long as the ": " the bridge budgets, and tags do not count.
		if strings.Contains(m.Text, "\n") {
			b.WriteString("<b>" + esc(m.From) + "</b>:\n<blockquote>" + esc(m.Text) + "</blockquote>")
		} else if len(m.Lines) == 0 {
			b.WriteString("<b>" + esc(m.From) + "</b>: " + esc(m.Text))
		}
		// A combined send (the core combines only texts of one line): every line behind its own
		// sender's bold pseudonym, as if sent alone.
		for i, l := range m.Lines {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString("<b>" + esc(l.From) + "</b>: " + esc(l.Text))
		}
	case bridge.KindNotice:
		if m.Text != "" {
			b.WriteString("<i>" + esc(bridge.NoticeMark+m.Text) + "</i>")
		}
	default:
		b.WriteString(esc(m.Text))
	}
	if m.Parts > 1 {
		fmt.Fprintf(&b, " <i>(%d/%d)</i>", m.Part, m.Parts)
	}
	if m.Code != "" {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("<code>" + esc(m.Code) + "</code>")
	}
	return b.String()
}

// renderCaption renders an image's caption. For an invoice it adds the amount, the expiry and the
// BOLT11 string; when that would pass Telegram's caption limit, the BOLT11 is returned as rest, to
// go in a message of its own.
func renderCaption(m bridge.Message, now time.Time) (caption, rest string) {
	inv := m.Invoice
	if inv == nil {
		c := render(m)
		if plainLen(m) > maxCaption && m.Code != "" {
			m.Code, rest = "", m.Code
			c = render(m)
		}
		return c, rest
	}
	esc := html.EscapeString
	var lines []string
	if m.Text != "" {
		// The bridge's caption already says the amount and how long the invoice lasts.
		lines = append(lines, esc(m.Text))
	} else {
		lines = append(lines, fmt.Sprintf("Amount: <b>%d sat</b>", inv.AmountSat))
		if !inv.ExpiresAt.IsZero() {
			lines = append(lines, fmt.Sprintf("Expires: %s UTC (in %s)", inv.ExpiresAt.UTC().Format("15:04"), shortDuration(inv.ExpiresAt.Sub(now).Round(time.Minute))))
		}
	}
	head := strings.Join(lines, "\n")
	bolt := inv.BOLT11
	if bolt == "" {
		bolt = m.Code
	}
	if bolt == "" {
		return head, ""
	}
	full := head + "\n<code>" + esc(bolt) + "</code>"
	if visibleLen(full) > maxCaption {
		return head, bolt
	}
	return full, ""
}

func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return "under a minute"
	}
	h, mnt := int(d.Hours()), int(d.Minutes())%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm", h, mnt)
	}
	return fmt.Sprintf("%d min", mnt)
}

// visibleLen is the UTF-16 length Telegram measures for our own HTML: tags removed, escapes
// counted as the character they stand for. It is only used on what render produces.
func visibleLen(s string) int {
	n, inTag := 0, false
	var text strings.Builder
	for _, r := range s {
		switch {
		case r == '<':
			inTag = true
		case r == '>' && inTag:
			inTag = false
		case !inTag:
			text.WriteRune(r)
		}
	}
	n = bridge.UTF16Len(html.UnescapeString(text.String()))
	return n
}

func plainLen(m bridge.Message) int { return visibleLen(render(m)) }
