package matrixtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/platforms/matrix/internal/memstate"
)

// User is an ordinary Matrix client with end-to-end encryption on (like Element): it syncs in the
// background, decrypts, and records every room event it sees so tests can wait for one.
type User struct {
	ID     id.UserID
	Client *mautrix.Client

	crypto *cryptohelper.CryptoHelper
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	events  []*event.Event
	failed  []*event.Event // events it could not decrypt
	changed chan struct{}  // closed and replaced whenever events grows
	syncErr error
}

// Login logs the registered user localpart in as a new encrypting device.
func (s *Server) Login(ctx context.Context, localpart, password string) (*User, error) {
	cli, err := mautrix.NewClient(s.URL, "", "")
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: localpart},
		Password:         password,
		StoreCredentials: true,
	}); err != nil {
		return nil, fmt.Errorf("login %s: %w", localpart, err)
	}
	cli.StateStore = memstate.New()
	syncer := cli.Syncer.(*mautrix.DefaultSyncer)
	syncer.OnEvent(cli.StateStoreSyncHandler)
	pickle := make([]byte, 32)
	_, _ = rand.Read(pickle)
	ch, err := cryptohelper.NewCryptoHelper(cli, pickle, crypto.NewMemoryStore(nil))
	if err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	if err := ch.Init(ctx); err != nil {
		return nil, fmt.Errorf("crypto init: %w", err)
	}
	cli.Crypto = ch
	u := &User{ID: cli.UserID, Client: cli, crypto: ch, done: make(chan struct{}), changed: make(chan struct{})}
	ch.DecryptErrorCallback = func(evt *event.Event, _ error) {
		u.mu.Lock()
		u.failed = append(u.failed, evt)
		u.mu.Unlock()
	}
	syncer.OnEvent(func(_ context.Context, evt *event.Event) {
		if evt.Mautrix.EventSource&(event.SourceTimeline|event.SourceInvite) == 0 || evt.Type == event.EventEncrypted {
			return
		}
		u.mu.Lock()
		u.events = append(u.events, evt)
		close(u.changed)
		u.changed = make(chan struct{})
		u.mu.Unlock()
	})
	syncCtx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	go func() {
		defer close(u.done)
		err := cli.SyncWithContext(syncCtx)
		u.mu.Lock()
		u.syncErr = err
		u.mu.Unlock()
	}()
	return u, nil
}

// Close stops syncing and logs the device out.
func (u *User) Close() {
	u.cancel()
	<-u.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = u.Client.Logout(ctx)
}

// CreateDM creates a direct chat with other, the way Element does (trusted_private_chat, is_direct,
// and with encryption on unless encrypted is false).
func (u *User) CreateDM(ctx context.Context, other id.UserID, encrypted bool) (id.RoomID, error) {
	return u.CreateDMPreset(ctx, other, encrypted, "trusted_private_chat")
}

// CreateDMPreset is CreateDM with another preset: "private_chat" leaves the invitee at the default
// power level (0), where "trusted_private_chat" gives them the creator's (100).
func (u *User) CreateDMPreset(ctx context.Context, other id.UserID, encrypted bool, preset string) (id.RoomID, error) {
	req := &mautrix.ReqCreateRoom{
		Preset:   preset,
		IsDirect: true,
		Invite:   []id.UserID{other},
	}
	if encrypted {
		req.InitialState = []*event.Event{{
			Type:    event.StateEncryption,
			Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
		}}
	}
	resp, err := u.Client.CreateRoom(ctx, req)
	if err != nil {
		return "", fmt.Errorf("create DM: %w", err)
	}
	return resp.RoomID, nil
}

// WaitJoined waits until this user's own sync shows who joined room. Sending only after that is
// what makes the tests deterministic: by then this user's state store knows the member, so its
// messages are encrypted for the member's device.
func (u *User) WaitJoined(ctx context.Context, room id.RoomID, who id.UserID) error {
	_, err := u.WaitEvent(ctx, func(e *event.Event) bool {
		return e.RoomID == room && e.Type == event.StateMember && e.GetStateKey() == who.String() &&
			e.Content.AsMember().Membership == event.MembershipJoin
	})
	return err
}

// SendText sends a plain text message (encrypted if the room is).
func (u *User) SendText(ctx context.Context, room id.RoomID, text string) error {
	_, err := u.Send(ctx, room, text)
	return err
}

// Send is SendText returning the message's event id.
func (u *User) Send(ctx context.Context, room id.RoomID, text string) (id.EventID, error) {
	resp, err := u.Client.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// WaitRedacted waits until this user's sync has shown an m.room.redaction of each of events in
// room, and then checks with the homeserver that every one of them has lost its content, the way a
// client that scrolls back sees it. It returns the first event still readable, or an error.
func (u *User) WaitRedacted(ctx context.Context, room id.RoomID, events []id.EventID) error {
	for _, eid := range events {
		if _, err := u.WaitEvent(ctx, func(e *event.Event) bool {
			return e.RoomID == room && e.Type == event.EventRedaction && redacts(e) == eid
		}); err != nil {
			return fmt.Errorf("no redaction of %s: %w", eid, err)
		}
		evt, err := u.Client.GetEvent(ctx, room, eid)
		if err != nil {
			return fmt.Errorf("fetching %s: %w", eid, err)
		}
		if evt.Unsigned.RedactedBecause == nil || len(evt.Content.Raw) != 0 {
			return fmt.Errorf("%s (%s) still has its content: %d keys", eid, evt.Type, len(evt.Content.Raw))
		}
	}
	return nil
}

// redacts is the event an m.room.redaction redacts: top level up to room version 10, in the
// content from version 11.
func redacts(e *event.Event) id.EventID {
	if e.Redacts != "" {
		return e.Redacts
	}
	r, _ := e.Content.Raw["redacts"].(string)
	return id.EventID(r)
}

// WaitEvent returns the first recorded event that match accepts, waiting for it until ctx ends.
func (u *User) WaitEvent(ctx context.Context, match func(*event.Event) bool) (*event.Event, error) {
	seen := 0
	for {
		u.mu.Lock()
		for _, e := range u.events[seen:] {
			if match(e) {
				u.mu.Unlock()
				return e, nil
			}
		}
		seen = len(u.events)
		ch, serr := u.changed, u.syncErr
		u.mu.Unlock()
		if serr != nil {
			return nil, fmt.Errorf("sync of %s stopped: %w", u.ID, serr)
		}
		select {
		case <-ch:
		case <-u.done:
			u.mu.Lock()
			serr = u.syncErr
			u.mu.Unlock()
			return nil, fmt.Errorf("sync of %s stopped: %w", u.ID, errors.Join(serr, errors.New("sync ended")))
		case <-ctx.Done():
			return nil, fmt.Errorf("%s waited for an event: %w", u.ID, ctx.Err())
		}
	}
}

// Messages returns the m.room.message events from sender in room recorded so far.
func (u *User) Messages(room id.RoomID, sender id.UserID) []*event.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*event.Event
	for _, e := range u.events {
		if e.RoomID == room && e.Sender == sender && e.Type == event.EventMessage {
			out = append(out, e)
		}
	}
	return out
}

// Shown is what room shows of sender's messages now: Messages without the ones a redaction this
// user's sync has seen removed.
func (u *User) Shown(room id.RoomID, sender id.UserID) []*event.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	gone := map[id.EventID]bool{}
	for _, e := range u.events {
		if e.RoomID == room && e.Type == event.EventRedaction {
			gone[redacts(e)] = true
		}
	}
	var out []*event.Event
	for _, e := range u.events {
		if e.RoomID == room && e.Sender == sender && e.Type == event.EventMessage && !gone[e.ID] {
			out = append(out, e)
		}
	}
	return out
}

// DecryptFailures is how many events this user could not decrypt.
func (u *User) DecryptFailures() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.failed)
}

// Download fetches (and decrypts, for encrypted rooms) the media of an m.image/m.file event.
func (u *User) Download(ctx context.Context, content *event.MessageEventContent) ([]byte, error) {
	if content.File != nil {
		uri, err := content.File.URL.Parse()
		if err != nil {
			return nil, fmt.Errorf("media url: %w", err)
		}
		data, err := u.Client.DownloadBytes(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("download: %w", err)
		}
		f := attachment.EncryptedFile(content.File.EncryptedFile)
		if err := f.DecryptInPlace(data); err != nil {
			return nil, fmt.Errorf("decrypt media: %w", err)
		}
		return data, nil
	}
	uri, err := content.URL.Parse()
	if err != nil {
		return nil, fmt.Errorf("media url: %w", err)
	}
	data, err := u.Client.DownloadBytes(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	return data, nil
}
