// Package matrix is kumo's Matrix adapter: a plain client account (not an appservice) on
// maunium.net/go/mautrix that talks to each person in a direct-message room, with end-to-end
// encryption (pure-Go olm: build with -tags goolm) and in-memory crypto and state stores.
//
// Each DM room is that user's private chat with the bot: bridge.Addr{Platform: "matrix",
// User: their user id, Chat: the room id}. The adapter accepts DM invites by itself, answers once and
// leaves rooms with anyone else in them, and ignores history from before it started.
package matrix

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/platforms/matrix/internal/memstate"
)

// Name is the platform's name in bridge.Addr.
const Name = "matrix"

// Config is the matrix section of kumo's config. Either AccessToken or Password is needed; with a
// password kumo logs in as a new device at every start (its keys live in memory only) and logs that
// device out when it stops.
type Config struct {
	Homeserver  string `yaml:"homeserver"`
	UserID      string `yaml:"user_id"`
	AccessToken string `yaml:"access_token" secret:"true"`
	Password    string `yaml:"password" secret:"true"`
	DeviceID    string `yaml:"device_id"`
	// Pacing is how fast kumo sends events (matrix.pacing.*). Homeservers set their own limits
	// (Synapse's rc_message, Dendrite's rate_limiting); the default, 5/s in bursts of 10, suits a
	// homeserver that exempts the bot's account; set the homeserver's figures otherwise.
	Pacing Pacing `yaml:"pacing"`
}

// Pacing is how fast the adapter sends events over all rooms.
type Pacing struct {
	Global      rate.Limit `yaml:"global"`       // events per second
	GlobalBurst int        `yaml:"global_burst"` // how many of them may go at once
}

// DefaultPacing is 5 events a second in bursts of 10.
func DefaultPacing() Pacing { return Pacing{Global: 5, GlobalBurst: 10} }

// Validate reports the first value that cannot work, naming its key.
// Validate reports every value that cannot work, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.Homeserver); c.Homeserver == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("matrix.homeserver must be the homeserver's http(s) URL, e.g. https://matrix.example.org, got %q", c.Homeserver))
	}
	if _, _, err := id.UserID(c.UserID).Parse(); err != nil {
		errs = append(errs, fmt.Errorf("matrix.user_id must be the bot's full Matrix ID, e.g. @kumo:example.org, got %q", c.UserID))
	}
	if c.AccessToken == "" && c.Password == "" {
		errs = append(errs, errors.New("matrix.password or matrix.access_token is needed (or KUMO_MATRIX_PASSWORD / KUMO_MATRIX_ACCESS_TOKEN)"))
	}
	if c.Pacing.Global < 0 || c.Pacing.GlobalBurst < 0 {
		errs = append(errs, errors.New("matrix.pacing: rates and bursts must not be negative (leave a key out for the default)"))
	}
	return errors.Join(errs...)
}

// LogValue keeps the secrets out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("homeserver", c.Homeserver),
		slog.String("user_id", c.UserID),
		slog.Bool("access_token", c.AccessToken != ""),
		slog.Bool("password", c.Password != ""),
		slog.String("device_id", c.DeviceID),
	)
}

type options struct {
	limiter *bridge.Gate
}

// Option changes how the adapter works; the defaults suit a common homeserver.
type Option func(*options)

// WithRate paces outgoing events (messages and uploads) at r per second with the given burst. The
// default, 5/s with a burst of 10, stays under common homeserver settings for bots; the bridge
// retries after M_LIMIT_EXCEEDED anyway.
func WithRate(r rate.Limit, burst int) Option {
	return func(o *options) { o.limiter = bridge.NewGate(r, burst) }
}

// Adapter is the Matrix platform. It implements bridge.Platform.
type Adapter struct {
	cfg     Config
	log     *slog.Logger
	limiter *bridge.Gate // the bot-wide budget, shared by the core's send classes
	// observe, when set, sees every event the sync delivered after the adapter handled it (tests).
	observe func(*event.Event)

	ready     chan struct{} // closed when cli is logged in and crypto is set up (the first time)
	readyOnce sync.Once
	cli       *mautrix.Client
	ch        *cryptohelper.CryptoHelper
	start     time.Time

	mu       sync.Mutex
	joining  map[id.RoomID]bool
	rooms    map[id.RoomID]*room
	latest   map[id.UserID]id.RoomID // the DM each user last wrote from
	imageful map[string]time.Time    // SendImage calls whose image went out but whose text did not
	media    mediaLimit              // the homeserver's upload limit (media.go)
	// reactions are the people's m.reaction events seen, so that redacting one reads as taking the
	// reaction back (convo.go).
	reactions map[id.EventID]reactionRef
	// botReactions are kumo's own m.reaction events, by room|event and emoji, to redact when taken back.
	botReactions map[string]map[string]id.EventID
	handler      bridge.Handler
	runCtx       context.Context
	workers      sync.WaitGroup
}

// room is what the adapter knows about one room it is in.
type room struct {
	user    id.UserID // the DM's other member, once known
	gone    bool      // the user left, or the room is not a DM: nothing is sent there any more
	warned  bool      // the "DMs only" answer went out
	queue   []*event.Event
	running bool
}

var (
	_ bridge.Platform = (*Adapter)(nil)
	_ bridge.Deleter  = (*Adapter)(nil)
)

// New makes the adapter from a valid cfg; a nil log discards. It connects only when Run starts.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pacing := DefaultPacing()
	if cfg.Pacing.Global > 0 {
		pacing.Global = cfg.Pacing.Global
	}
	if cfg.Pacing.GlobalBurst > 0 {
		pacing.GlobalBurst = cfg.Pacing.GlobalBurst
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := options{limiter: bridge.NewGate(pacing.Global, pacing.GlobalBurst)}
	for _, opt := range opts {
		opt(&o)
	}
	a := &Adapter{
		cfg:          cfg,
		log:          log.With("platform", Name),
		limiter:      o.limiter,
		ready:        make(chan struct{}),
		joining:      map[id.RoomID]bool{},
		rooms:        map[id.RoomID]*room{},
		latest:       map[id.UserID]id.RoomID{},
		imageful:     map[string]time.Time{},
		reactions:    map[id.EventID]reactionRef{},
		botReactions: map[string]map[string]id.EventID{},
	}
	return a, nil
}

// Name implements bridge.Platform.
// InviteLink implements bridge.Inviter. A matrix.to link opens a DM with the bot in any client; it
// carries no payload into the chat, so the person sends the token there.
func (a *Adapter) InviteLink(token string) (string, bool) {
	return "https://matrix.to/#/" + a.cfg.UserID + " then send: /join " + token, true
}

var _ bridge.Inviter = (*Adapter)(nil)

func (a *Adapter) Name() string { return Name }

// Limits implements bridge.Platform: see textLen for how Matrix's 64 KiB event cap is counted.
func (a *Adapter) Limits() bridge.Limits {
	return bridge.Limits{MaxText: maxText, Overhead: overhead, LineOverhead: lineOverhead, TextLen: textLen}
}

// Run logs in, sets up encryption and syncs until ctx ends. It returns nil when ctx ended.
func (a *Adapter) Run(ctx context.Context, h bridge.Handler) error {
	a.mu.Lock()
	if a.handler != nil {
		a.mu.Unlock()
		return errors.New("matrix: Run called twice")
	}
	a.handler, a.runCtx = h, ctx
	a.mu.Unlock()
	// The bridge runs it again after a failure (the homeserver unreachable at start).
	defer func() {
		a.mu.Lock()
		a.handler = nil
		a.mu.Unlock()
	}()

	loggedIn, err := a.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer a.workers.Wait()
	if loggedIn {
		// Our keys die with the process: remove the device so users' clients stop encrypting for it.
		defer a.logout()
	}
	a.readyOnce.Do(func() { close(a.ready) })
	if r, ok := h.(bridge.ReadyNotifier); ok {
		r.Ready(Name)
	}
	a.log.Info("matrix connected", "user_id", a.cli.UserID, "device_id", a.cli.DeviceID)

	err = a.cli.SyncWithContext(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("matrix: sync: %w", err)
}

// connect logs in (or checks the token) and sets up the crypto machine. It reports whether it
// created the device itself.
func (a *Adapter) connect(ctx context.Context) (loggedIn bool, err error) {
	cli, err := mautrix.NewClient(a.cfg.Homeserver, id.UserID(a.cfg.UserID), a.cfg.AccessToken)
	if err != nil {
		return false, fmt.Errorf("matrix: client: %w", err)
	}
	cli.Log = zerologTo(a.log)
	// The bridge owns retries (it keeps each recipient's order): mautrix must not sleep on 429s or
	// retry sends behind its back. The sync loop retries on its own (OnFailedSync).
	cli.DefaultHTTPRetries = 0
	cli.IgnoreRateLimit = true
	cli.StateStore = memstate.New()
	sy := newSyncer(a)
	cli.Syncer = sy
	a.cli = cli

	if a.cfg.AccessToken == "" {
		localpart, _, _ := id.UserID(a.cfg.UserID).Parse()
		_, err = cli.Login(ctx, &mautrix.ReqLogin{
			Type:                     mautrix.AuthTypePassword,
			Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: localpart},
			Password:                 a.cfg.Password,
			DeviceID:                 id.DeviceID(a.cfg.DeviceID),
			InitialDeviceDisplayName: "kumo",
			StoreCredentials:         true,
		})
		if err != nil {
			if errors.Is(err, mautrix.MForbidden) {
				return false, fmt.Errorf("matrix: the homeserver refused the login as %s (%w): check matrix.user_id and matrix.password: %w", a.cfg.UserID, bridge.ErrUnauthorized, err)
			}
			return false, fmt.Errorf("matrix: login as %s: %w", a.cfg.UserID, err)
		}
		loggedIn = true
	} else {
		who, err := cli.Whoami(ctx)
		if err != nil {
			if errors.Is(err, mautrix.MUnknownToken) {
				return false, fmt.Errorf("matrix: the homeserver does not know matrix.access_token (%w): make a new one: %w", bridge.ErrUnauthorized, err)
			}
			return false, fmt.Errorf("matrix: check access token: %w", err)
		}
		if who.UserID != cli.UserID {
			return false, fmt.Errorf("matrix: the access token belongs to %s, not %s", who.UserID, cli.UserID)
		}
		if a.cfg.DeviceID != "" && who.DeviceID != id.DeviceID(a.cfg.DeviceID) {
			return false, fmt.Errorf("matrix: the access token is for device %s, not %s", who.DeviceID, a.cfg.DeviceID)
		}
		cli.DeviceID = who.DeviceID
	}
	fail := func(err error) (bool, error) {
		if loggedIn {
			a.logout()
		}
		return false, err
	}

	// A random pickle key: the in-memory store never pickles to disk anyway.
	pickle := make([]byte, 32)
	_, _ = rand.Read(pickle)
	ch, err := cryptohelper.NewCryptoHelper(cli, pickle, crypto.NewMemoryStore(nil))
	if err != nil {
		return fail(fmt.Errorf("matrix: crypto: %w", err))
	}
	// State first: the crypto machine and our handlers read the state store.
	sy.d.OnEvent(cli.StateStoreSyncHandler)
	if err := ch.Init(ctx); err != nil {
		if !loggedIn {
			err = fmt.Errorf("%w (kumo keeps its encryption keys in memory only, so an access token can be used "+
				"for one run of one device: log in with a password instead, or use a fresh token)", err)
		}
		return fail(fmt.Errorf("matrix: crypto: %w", err))
	}
	cli.Crypto = ch
	a.ch = ch
	a.start = time.Now()
	sy.d.OnEvent(a.onEvent)
	return loggedIn, nil
}

// logout deletes the device this run created, with its own short deadline (Run's ctx is over).
func (a *Adapter) logout() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.cli.Logout(ctx); err != nil {
		a.log.Warn("matrix logout failed", "err", err)
	}
}

// onEvent runs in the sync loop: it only sorts events and must not block.
func (a *Adapter) onEvent(ctx context.Context, evt *event.Event) {
	if a.observe != nil {
		defer a.observe(evt)
	}
	src := evt.Mautrix.EventSource
	me := a.cli.UserID
	switch {
	case evt.Type == event.StateMember && src&event.SourceInvite != 0:
		// Invites come in the invite section and again later; only the invite section counts.
		if evt.GetStateKey() == me.String() && evt.Content.AsMember().Membership == event.MembershipInvite {
			a.accept(evt.RoomID, evt.Sender)
		}
	case src&event.SourceJoin != 0 && src&event.SourceTimeline != 0:
		switch evt.Type {
		case event.StateMember, event.EventMessage, event.EventSticker, event.EventEncrypted, event.EventReaction, event.EventRedaction:
			if evt.Type != event.StateMember && evt.Sender == me {
				return
			}
			a.enqueue(evt)
		}
	case src&event.SourceLeave != 0 && evt.Type == event.StateMember && evt.GetStateKey() == me.String():
		// We were kicked or banned, or left: the DM is gone.
		a.enqueue(evt)
	}
}

// accept joins a room we were invited to, off the sync loop.
func (a *Adapter) accept(roomID id.RoomID, inviter id.UserID) {
	a.mu.Lock()
	if a.joining[roomID] {
		a.mu.Unlock()
		return
	}
	a.joining[roomID] = true
	ctx := a.runCtx
	a.workers.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.workers.Done()
		defer func() {
			a.mu.Lock()
			delete(a.joining, roomID)
			a.mu.Unlock()
		}()
		if _, err := a.cli.JoinRoomByID(ctx, roomID); err != nil {
			a.log.Warn("matrix: cannot join a room we were invited to", "room_id", roomID, "err", err)
			return
		}
		// Load the room's state now, so that we know whether it is encrypted and who is in it
		// before anything is sent there (the sync that shows our join may come later).
		if _, err := a.cli.State(ctx, roomID); err != nil {
			a.log.Warn("matrix: cannot load the state of a joined room", "room_id", roomID, "err", err)
			return
		}
		a.checkDM(ctx, roomID, inviter)
	}()
}

// checkDM answers once and leaves when a room has anyone but one user and the bot in it. It
// reports whether the room is a DM.
func (a *Adapter) checkDM(ctx context.Context, roomID id.RoomID, user id.UserID) bool {
	members, err := a.cli.StateStore.GetRoomJoinedOrInvitedMembers(ctx, roomID)
	if err != nil {
		a.log.Warn("matrix: cannot read room members", "room_id", roomID, "err", err)
		return false
	}
	others := 0
	for _, m := range members {
		if m != a.cli.UserID {
			others++
		}
	}
	if others <= 1 {
		return true
	}
	// The join goroutine and the room's worker may both get here: the first one answers and leaves.
	a.mu.Lock()
	r := a.room(roomID)
	if r.warned {
		a.mu.Unlock()
		return false
	}
	r.warned = true
	wasDM := !r.gone && r.user != ""
	dmUser := r.user
	r.gone = true
	a.mu.Unlock()
	if wasDM {
		// Someone else came into a DM: relaying on would show them the kumo room. Leave it.
		a.leaveBridgeRoom(ctx, dmUser, roomID)
	}
	_ = a.limiter.Wait(ctx)
	_, err = a.cli.SendMessageEvent(ctx, roomID, event.EventMessage, render(bridge.Message{
		Kind: bridge.KindReply,
		Text: "kumo only works in a direct chat with one person. Start a direct message with me instead.",
	}))
	if err != nil {
		a.log.Warn("matrix: cannot answer in a group room", "room_id", roomID, "err", err)
	}
	if _, err := a.cli.LeaveRoom(ctx, roomID); err != nil {
		a.log.Warn("matrix: cannot leave a group room", "room_id", roomID, "err", err)
	}
	return false
}

// room returns the record of roomID, creating it. a.mu must be held.
func (a *Adapter) room(roomID id.RoomID) *room {
	r := a.rooms[roomID]
	if r == nil {
		r = &room{}
		a.rooms[roomID] = r
	}
	return r
}

// enqueue hands an event to its room's worker. Each room's events are handled in order, on their
// own goroutine: waiting for a missing decryption key holds up that room only, never the sync loop.
func (a *Adapter) enqueue(evt *event.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.room(evt.RoomID)
	r.queue = append(r.queue, evt)
	if r.running {
		return
	}
	r.running = true
	a.workers.Add(1)
	go a.work(a.runCtx, evt.RoomID, r)
}

func (a *Adapter) work(ctx context.Context, roomID id.RoomID, r *room) {
	defer a.workers.Done()
	for {
		a.mu.Lock()
		if len(r.queue) == 0 || ctx.Err() != nil {
			r.queue, r.running = nil, false
			a.mu.Unlock()
			return
		}
		evt := r.queue[0]
		r.queue = r.queue[1:]
		a.mu.Unlock()
		a.handle(ctx, roomID, evt)
	}
}

// handle turns one event of a room into what the bridge understands.
func (a *Adapter) handle(ctx context.Context, roomID id.RoomID, evt *event.Event) {
	if evt.Type == event.EventEncrypted {
		dec, ok := a.decrypt(ctx, evt)
		if !ok {
			return
		}
		evt = dec
	}
	if evt.Type == event.StateMember {
		a.handleMember(ctx, roomID, evt)
		return
	}
	if evt.Sender == a.cli.UserID {
		return
	}
	if !a.checkDM(ctx, roomID, evt.Sender) {
		return
	}
	in := bridge.Inbound{From: bridge.Addr{Platform: Name, User: evt.Sender.String(), Chat: roomID.String()},
		ID: bridge.MessageID(evt.ID), Origin: origin(evt.Sender)}
	switch evt.Type {
	case event.EventSticker:
		if atts, _ := a.attachmentsOf(evt.Type, evt.Content.AsMessage()); len(atts) > 0 {
			in.Attachments = atts // media.go
		} else {
			in.NonText = true
		}
	case event.EventMessage:
		msg := evt.Content.AsMessage()
		if rel := msg.GetRelatesTo(); rel != nil && rel.Type == event.RelReplace {
			// An edit (m.replace): the new text is in m.new_content.
			if msg.NewContent == nil || msg.NewContent.Body == "" {
				return
			}
			in.Action, in.Target, in.Text = bridge.ActionEdit, bridge.MessageID(rel.EventID), msg.NewContent.Body
			break
		}
		if r := msg.RelatesTo.GetReplyTo(); r != "" {
			in.ReplyTo = bridge.MessageID(r)
		}
		switch msg.MsgType {
		case event.MsgText, event.MsgNotice, event.MsgEmote:
			msg.RemoveReplyFallback()
			in.Text = msg.Body
		default:
			if atts, caption := a.attachmentsOf(evt.Type, msg); len(atts) > 0 {
				in.Text, in.Attachments = caption, atts // media.go
			} else {
				in.NonText = true
			}
		}
	case event.EventReaction:
		rel := evt.Content.AsReaction().RelatesTo
		if rel.Type != event.RelAnnotation || rel.Key == "" {
			return
		}
		a.rememberReaction(evt.ID, rel.EventID, rel.Key)
		in.Action, in.Target, in.Emoji, in.ID = bridge.ActionReact, bridge.MessageID(rel.EventID), rel.Key, ""
	case event.EventRedaction:
		// A redaction of the person's reaction takes it back; of their message, unsends it.
		target := evt.Redacts
		if target == "" {
			target = evt.Content.AsRedaction().Redacts
		}
		if on, key, ok := a.takeReaction(target); ok {
			in.Action, in.Target, in.Emoji, in.ID = bridge.ActionUnreact, bridge.MessageID(on), key, ""
		} else {
			in.Action, in.Target, in.ID = bridge.ActionUnsend, bridge.MessageID(target), ""
		}
	default:
		return
	}
	a.mu.Lock()
	r := a.room(roomID)
	if r.gone {
		a.mu.Unlock()
		return
	}
	r.user = evt.Sender
	a.latest[evt.Sender] = roomID
	h := a.handler
	a.mu.Unlock()
	h.HandleInbound(ctx, in)
}

// handleMember notices the DM's user (or the bot) leaving.
func (a *Adapter) handleMember(ctx context.Context, roomID id.RoomID, evt *event.Event) {
	mem := evt.Content.AsMember().Membership
	target := id.UserID(evt.GetStateKey())
	switch {
	case target == a.cli.UserID && mem == event.MembershipJoin:
		a.checkDM(ctx, roomID, evt.Sender)
	case target != a.cli.UserID && (mem == event.MembershipJoin || mem == event.MembershipInvite):
		a.checkDM(ctx, roomID, target)
	case mem == event.MembershipLeave || mem == event.MembershipBan:
		a.mu.Lock()
		r := a.room(roomID)
		user, wasDM := r.user, !r.gone
		if target != a.cli.UserID && user == "" {
			user = target // left before writing anything
		}
		if target != a.cli.UserID && target != user {
			a.mu.Unlock()
			return
		}
		r.gone = true
		a.mu.Unlock()
		if wasDM && user != "" {
			a.leaveBridgeRoom(ctx, user, roomID)
		}
		if target != a.cli.UserID {
			if _, err := a.cli.LeaveRoom(ctx, roomID); err != nil {
				a.log.Debug("matrix: cannot leave an abandoned DM", "room_id", roomID, "err", err)
			}
		}
	}
}

// leaveBridgeRoom tells the bridge that user cannot be reached in roomID any more. Leaving the DM
// is the Matrix way of leaving: the adapter says "/leave" on their behalf, which is the core's own
// leave command, so the others in their kumo room are told at once (instead of at the next
// failed delivery). It does so only for the DM the user last wrote from: a user who leaves an old
// DM while chatting in a newer one stays.
func (a *Adapter) leaveBridgeRoom(ctx context.Context, user id.UserID, roomID id.RoomID) {
	a.mu.Lock()
	last, known := a.latest[user]
	if known && last != roomID {
		a.mu.Unlock()
		return
	}
	delete(a.latest, user)
	h := a.handler
	a.mu.Unlock()
	h.HandleInbound(ctx, bridge.Inbound{
		From:   bridge.Addr{Platform: Name, User: user.String(), Chat: roomID.String()},
		Text:   "/leave",
		Origin: origin(user),
	})
}

// Decryption: keys (m.room_key, sent to our device) can arrive after the event they unlock, so wait
// for them, then ask the sender's devices again, then give up and say so.
const (
	keyWait       = 5 * time.Second
	keyWaitLonger = 20 * time.Second
)

func (a *Adapter) decrypt(ctx context.Context, evt *event.Event) (*event.Event, bool) {
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
		return nil, false
	}
	dec, err := a.ch.Decrypt(ctx, evt)
	if errors.Is(err, crypto.ErrNoSessionFound) {
		content := evt.Content.AsEncrypted()
		if !a.ch.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, keyWait) {
			// An empty device asks all of the sender's devices (the event's device_id is deprecated).
			a.ch.RequestSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, evt.Sender, "")
			a.ch.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, keyWaitLonger)
		}
		dec, err = a.ch.Decrypt(ctx, evt)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, false
		}
		a.log.Warn("matrix: cannot decrypt a message", "room_id", evt.RoomID, "event_id", evt.ID, "err", err)
		a.mu.Lock()
		gone := a.room(evt.RoomID).gone
		a.mu.Unlock()
		if !gone && evt.Sender != a.cli.UserID {
			_ = a.limiter.Wait(ctx)
			_, _ = a.cli.SendMessageEvent(ctx, evt.RoomID, event.EventMessage, render(bridge.Message{
				Kind: bridge.KindReply,
				Text: "I could not decrypt a message you sent, so it was not delivered. Please send it again.",
			}))
		}
		return nil, false
	}
	dec.Mautrix.EventSource = evt.Mautrix.EventSource | event.SourceDecrypted
	return dec, true
}

// SendText implements bridge.Platform. A message's id is its event id.
func (a *Adapter) SendText(ctx context.Context, to bridge.Addr, m bridge.Message) (bridge.MessageID, error) {
	roomID, err := a.target(ctx, to)
	if err != nil {
		return "", err
	}
	content := render(m)
	if m.ReplyTo != "" {
		content.RelatesTo = &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: id.EventID(m.ReplyTo)}}
	}
	return a.send(ctx, roomID, content)
}

// SendImage implements bridge.Platform: the picture as an m.image (encrypted like the room), then
// the caption and code as text. When the image went out and the text did not, the bridge's retry
// sends only the text again (the image's event id was returned with the failure).
func (a *Adapter) SendImage(ctx context.Context, to bridge.Addr, img bridge.Image, m bridge.Message) ([]bridge.MessageID, error) {
	roomID, err := a.target(ctx, to)
	if err != nil {
		return nil, err
	}
	key := imageKey(roomID, img, m)
	a.mu.Lock()
	for k, t := range a.imageful {
		if time.Since(t) > time.Hour {
			delete(a.imageful, k)
		}
	}
	_, sent := a.imageful[key]
	a.mu.Unlock()
	var ids []bridge.MessageID
	if !sent {
		content, err := a.uploadImage(ctx, roomID, img)
		if err != nil {
			return nil, err
		}
		id, err := a.send(ctx, roomID, content)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
		a.mu.Lock()
		a.imageful[key] = time.Now()
		a.mu.Unlock()
	}
	id, err := a.send(ctx, roomID, render(m))
	if err != nil {
		return ids, err
	}
	a.mu.Lock()
	delete(a.imageful, key)
	a.mu.Unlock()
	return append(ids, id), nil
}

// target waits until the adapter is connected and checks that to is one of its DMs.
func (a *Adapter) target(ctx context.Context, to bridge.Addr) (id.RoomID, error) {
	if to.Platform != Name {
		return "", fmt.Errorf("matrix: address of platform %q: %w", to.Platform, bridge.ErrRejected)
	}
	select {
	case <-a.ready:
	case <-ctx.Done():
		return "", fmt.Errorf("matrix: not connected: %w", ctx.Err())
	}
	roomID := id.RoomID(to.Chat)
	a.mu.Lock()
	r := a.rooms[roomID]
	gone := r != nil && r.gone
	a.mu.Unlock()
	if gone {
		return "", fmt.Errorf("matrix: %s left the DM: %w", to.User, bridge.ErrRecipientGone)
	}
	if !strings.HasPrefix(to.Chat, "!") {
		return "", fmt.Errorf("matrix: %q is not a room id: %w", to.Chat, bridge.ErrRejected)
	}
	return roomID, nil
}

// send paces and sends one message event (encrypted when the room is) and classifies the error.
func (a *Adapter) send(ctx context.Context, roomID id.RoomID, content *event.MessageEventContent) (bridge.MessageID, error) {
	if err := a.limiter.Wait(ctx); err != nil {
		return "", fmt.Errorf("matrix: %w", err)
	}
	resp, err := a.cli.SendMessageEvent(ctx, roomID, event.EventMessage, content)
	if err != nil {
		return "", classify(err)
	}
	return bridge.MessageID(resp.EventID), nil
}

// DeleteBatch is 1: every redaction is its own request (and its own event in the room).
func (a *Adapter) DeleteBatch() int { return 1 }

// DeletesTheirs says whether the bot may redact the person's own events in the DM at to: its power
// level must reach the room's redact level (to redact others' events) and the level needed to send
// m.room.redaction at all. A DM made the way Element makes one (trusted_private_chat) gives the
// invited bot its creator's level, so usually yes; the room's power levels decide, as the state store
// holds them (loaded when the bot joins, replaced by every m.room.power_levels the sync brings).
func (a *Adapter) DeletesTheirs(ctx context.Context, to bridge.Addr) bool {
	roomID, err := a.target(ctx, to)
	if err != nil {
		return false
	}
	pl, err := a.powerLevels(ctx, roomID)
	if err != nil {
		a.log.Warn("matrix: cannot read a DM's power levels", "room_id", roomID, "err", err)
		return false
	}
	me := pl.GetUserLevel(a.cli.UserID)
	return me >= pl.Redact() && me >= pl.GetEventLevel(event.EventRedaction)
}

// powerLevels are the room's power levels: the state store's, else the homeserver's (not cached:
// the sync may be storing newer ones at the same moment).
func (a *Adapter) powerLevels(ctx context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, error) {
	pl, err := a.cli.StateStore.GetPowerLevels(ctx, roomID)
	if err != nil || pl != nil {
		return pl, err
	}
	pl = &event.PowerLevelsEventContent{}
	if err := a.cli.StateEvent(ctx, roomID, event.StatePowerLevels, "", pl); err != nil {
		return nil, classify(err)
	}
	return pl, nil
}

// DeleteMessages redacts ids (event ids: the bot's own, or the person's where DeletesTheirs holds) in
// the DM at to, paced by the adapter's limiter; M_LIMIT_EXCEEDED comes back as a
// *bridge.RateLimitError with its retry_after_ms. The homeserver strips a redacted event's content
// (in an encrypted room: the ciphertext) for everyone. Each redaction's transaction id is derived
// from the event id, so a request retried after a lost answer is one redaction, not two. An event
// the homeserver does not know (M_NOT_FOUND) counts as deleted.
func (a *Adapter) DeleteMessages(ctx context.Context, to bridge.Addr, ids []bridge.MessageID) error {
	roomID, err := a.target(ctx, to)
	if err != nil {
		return err
	}
	for _, eid := range ids {
		if err := a.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("matrix: %w", err)
		}
		_, err := a.cli.RedactEvent(ctx, roomID, id.EventID(eid), mautrix.ReqRedact{TxnID: "kumo-redact-" + string(eid)})
		if err == nil || errors.Is(err, mautrix.MNotFound) {
			continue
		}
		if errors.Is(err, mautrix.MForbidden) {
			// Not allowed to redact this event (or not in the room any more): it can never go.
			return fmt.Errorf("matrix: redact: %w: %w", bridge.ErrRejected, err)
		}
		return classify(err)
	}
	return nil
}

// classify maps a homeserver answer to what the bridge does next.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var herr mautrix.HTTPError
	if !errors.As(err, &herr) || herr.Response == nil {
		return fmt.Errorf("matrix: %w", err) // network trouble, crypto trouble: transient
	}
	code := herr.Response.StatusCode
	var errcode string
	if herr.RespError != nil {
		errcode = herr.RespError.ErrCode
	}
	switch {
	case errcode == mautrix.MLimitExceeded.ErrCode || code == 429:
		return &bridge.RateLimitError{RetryAfter: retryAfter(herr), Err: err}
	case errcode == mautrix.MForbidden.ErrCode || errcode == mautrix.MNotFound.ErrCode:
		// Not in the room (any more), or no such room: nobody to write to there.
		return fmt.Errorf("matrix: %w: %w", bridge.ErrRecipientGone, err)
	case errcode == mautrix.MTooLarge.ErrCode || code == http.StatusRequestEntityTooLarge:
		// Dendrite answers an upload over max_file_size_bytes with 413 and M_UNKNOWN, Synapse with
		// M_TOO_LARGE: either way the sender must hear it was too big, not that it failed.
		return fmt.Errorf("matrix: %w: %w: %w", bridge.ErrTooBig, bridge.ErrRejected, err)
	case code >= 400 && code < 500 && code != 408:
		return fmt.Errorf("matrix: %w: %w", bridge.ErrRejected, err)
	}
	return fmt.Errorf("matrix: %w", err)
}

// retryAfter reads retry_after_ms (the spec's field), else the Retry-After header, else 1s.
func retryAfter(herr mautrix.HTTPError) time.Duration {
	if herr.RespError != nil {
		if ms, ok := herr.RespError.ExtraData["retry_after_ms"].(float64); ok && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	if herr.Response != nil {
		if s := herr.Response.Header.Get("Retry-After"); s != "" {
			var secs int
			if _, err := fmt.Sscanf(s, "%d", &secs); err == nil && secs > 0 {
				return time.Duration(secs) * time.Second
			}
		}
	}
	return time.Second
}

// origin groups senders by homeserver (bridge.Inbound.Origin): anyone may register accounts on a
// homeserver of their own, so what one person can do with many accounts is counted per server too.
func origin(user id.UserID) string {
	hs := user.Homeserver()
	if hs == "" {
		return ""
	}
	return "hs:" + strings.ToLower(hs)
}
