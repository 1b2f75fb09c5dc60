// Package bridgetest is an in-memory messenger for tests of the core and of whatever sits on it: it
// records what each chat was sent and lets a test speak as any user.
package bridgetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-chat/kumo/bridge"
)

// Platform is a fake messenger. Its zero value is not usable: call New.
type Platform struct {
	name   string
	limits bridge.Limits

	mu      sync.Mutex
	h       bridge.Handler
	ready   chan struct{}
	changed chan struct{} // closed and replaced at every send, to wake waiters
	got     map[string][]bridge.Message
	images  map[string][]bridge.Image
	// chats is what each chat shows now, the person's own messages included; next numbers
	// messages per chat.
	chats map[string][]Shown
	next  map[string]int
	fail  func(to bridge.Addr, m bridge.Message) error
	sends int
	// invite makes invite links (bridge.Inviter), when set.
	invite func(token string) string
	pacer  *pacer        // SetPacing
	gate   chan struct{} // Hold
	held   int           // sends waiting at the gate
}

// New makes a fake platform with that name and limits.
func New(name string, limits bridge.Limits) *Platform {
	return &Platform{
		name: name, limits: limits,
		ready:   make(chan struct{}),
		changed: make(chan struct{}),
		got:     make(map[string][]bridge.Message),
		images:  make(map[string][]bridge.Image),
		chats:   make(map[string][]Shown),
		next:    make(map[string]int),
	}
}

// Shown is one message a chat shows: one kumo sent (Msg) or one the person sent (Own, Text).
type Shown struct {
	ID   bridge.MessageID
	Own  bool
	Text string // Own: what the person wrote
	Msg  bridge.Message
	// Edits counts how often kumo edited it; Reactions are the bot's reactions on it now.
	Edits     int
	Reactions []string
}

func (s Shown) String() string {
	if s.Own {
		return "(own) " + s.Text
	}
	return "[" + s.Msg.Kind.String() + "] " + s.Msg.String()
}

// newID numbers the chat's next message. Callers hold mu.
func (p *Platform) newID(chat string) bridge.MessageID {
	p.next[chat]++
	return bridge.MessageID(fmt.Sprintf("%s#%d", chat, p.next[chat]))
}

// wake tells waiters something changed. Callers hold mu.
func (p *Platform) wake() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Chat is what the chat shows now: kumo's messages and the person's own, minus what was deleted.
func (p *Platform) Chat(chat string) []Shown {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.chats[chat])
}

// WaitChat waits until cond holds for what the chat shows now.
func (p *Platform) WaitChat(t testing.TB, chat string, timeout time.Duration, what string, cond func([]Shown) bool) []Shown {
	t.Helper()
	return waitOn(t, p, timeout, func() []Shown { return slices.Clone(p.chats[chat]) }, cond, func(shown []Shown) {
		var b strings.Builder
		for _, s := range shown {
			b.WriteString("  " + s.String() + "\n")
		}
		t.Fatalf("%s chat %s: timed out waiting for %s; it shows:\n%s", p.name, chat, what, b.String())
	})
}

// waitOn waits until cond holds for what snap takes of p (under p's lock), looking again at each
// change; after timeout it hands the last look to fail, which fails the test.
func waitOn[T any](t testing.TB, p *Platform, timeout time.Duration, snap func() T, cond func(T) bool, fail func(T)) T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		v := snap()
		changed := p.changed
		p.mu.Unlock()
		if cond(v) {
			return v
		}
		select {
		case <-changed:
		case <-deadline.C:
			fail(v)
			return v
		}
	}
}

// Name implements bridge.Platform.
func (p *Platform) Name() string { return p.name }

// Limits implements bridge.Platform.
func (p *Platform) Limits() bridge.Limits { return p.limits }

// Run implements bridge.Platform: it only remembers the handler.
func (p *Platform) Run(ctx context.Context, h bridge.Handler) error {
	p.mu.Lock()
	p.h = h
	p.mu.Unlock()
	close(p.ready)
	<-ctx.Done()
	return nil
}

// SetFailure makes sends fail: f is asked before every send; a nil error lets it through.
func (p *Platform) SetFailure(f func(to bridge.Addr, m bridge.Message) error) {
	p.mu.Lock()
	p.fail = f
	p.mu.Unlock()
}

// SendText implements bridge.Platform. Message ids are "<chat>#<n>", n counting from 1 per chat.
func (p *Platform) SendText(ctx context.Context, to bridge.Addr, m bridge.Message) (bridge.MessageID, error) {
	if err := p.admit(ctx, to); err != nil {
		return "", err
	}
	return p.record(to, m, nil)
}

// SendImage implements bridge.Platform.
func (p *Platform) SendImage(ctx context.Context, to bridge.Addr, img bridge.Image, m bridge.Message) ([]bridge.MessageID, error) {
	if err := p.admit(ctx, to); err != nil {
		return nil, err
	}
	id, err := p.record(to, m, &img)
	if err != nil {
		return nil, err
	}
	return []bridge.MessageID{id}, nil
}

func (p *Platform) record(to bridge.Addr, m bridge.Message, img *bridge.Image) (bridge.MessageID, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sends++
	if p.fail != nil {
		if err := p.fail(to, m); err != nil {
			return "", err
		}
	}
	p.got[to.Chat] = append(p.got[to.Chat], m)
	id := p.newID(to.Chat)
	p.chats[to.Chat] = append(p.chats[to.Chat], Shown{ID: id, Msg: m})
	if img != nil {
		p.images[to.Chat] = append(p.images[to.Chat], *img)
	}
	p.wake()
	return id, nil
}

// User is the address of a user of this platform (their DM chat is "dm-"+id).
func (p *Platform) User(id string) bridge.Addr {
	return bridge.Addr{Platform: p.name, User: id, Chat: "dm-" + id}
}

// Say hands the core a message from the user, once the core is running.
func (p *Platform) Say(t testing.TB, from bridge.Addr, text string) {
	t.Helper()
	p.Reply(t, from, "", text) // a reply to nothing is a plain message
}

// Reply hands the core the user's reply to the message id in their chat and returns its id.
func (p *Platform) Reply(t testing.TB, from bridge.Addr, to bridge.MessageID, text string) bridge.MessageID {
	t.Helper()
	h := p.handler(t)
	p.mu.Lock()
	id := p.newID(from.Chat)
	p.chats[from.Chat] = append(p.chats[from.Chat], Shown{ID: id, Own: true, Text: text})
	p.wake()
	p.mu.Unlock()
	h.HandleInbound(context.Background(), bridge.Inbound{From: from, Text: text, ID: id, ReplyTo: to})
	return id
}

// Act hands the core what the user did to the message target in their chat: an edit of their own
// message (the chat shows the new text), its deletion (the chat no longer shows it), or a reaction.
func (p *Platform) Act(t testing.TB, from bridge.Addr, action bridge.Action, target bridge.MessageID, arg string) {
	t.Helper()
	h := p.handler(t)
	in := bridge.Inbound{From: from, Action: action, Target: target, ID: target}
	p.mu.Lock()
	switch action {
	case bridge.ActionEdit:
		in.Text = arg
		for i, s := range p.chats[from.Chat] {
			if s.ID == target {
				p.chats[from.Chat][i].Text = arg
			}
		}
	case bridge.ActionUnsend:
		p.chats[from.Chat] = slices.DeleteFunc(p.chats[from.Chat], func(s Shown) bool { return s.ID == target })
	default:
		in.Emoji = arg
	}
	p.wake()
	p.mu.Unlock()
	h.HandleInbound(context.Background(), in)
}

// SayFrom hands the core a message from the user arriving from origin (Inbound.Origin: the web
// visitor's network, the Matrix homeserver).
func (p *Platform) SayFrom(t testing.TB, from bridge.Addr, origin, text string) {
	t.Helper()
	p.handler(t).HandleInbound(context.Background(), bridge.Inbound{From: from, Text: text, Origin: origin})
}

// SayNonText hands the core a photo/sticker/file from the user.
func (p *Platform) SayNonText(t testing.TB, from bridge.Addr) {
	t.Helper()
	h := p.handler(t)
	p.mu.Lock()
	id := p.newID(from.Chat)
	p.chats[from.Chat] = append(p.chats[from.Chat], Shown{ID: id, Own: true, Text: "(photo)"})
	p.wake()
	p.mu.Unlock()
	h.HandleInbound(context.Background(), bridge.Inbound{From: from, NonText: true, ID: id})
}

// Gone tells the core the user is gone for good on this platform (bridge.Inbound.Left).
func (p *Platform) Gone(t testing.TB, from bridge.Addr) {
	t.Helper()
	p.handler(t).HandleInbound(context.Background(), bridge.Inbound{From: from, Left: true})
}

func (p *Platform) handler(t testing.TB) bridge.Handler {
	select {
	case <-p.ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the core never started the platform", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.h
}

// Messages is everything the chat was sent so far.
func (p *Platform) Messages(chat string) []bridge.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got[chat])
}

// Images is every image the chat was sent so far.
func (p *Platform) Images(chat string) []bridge.Image {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.images[chat])
}

// Sends counts every send attempt, failed ones included.
func (p *Platform) Sends() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sends
}

// WaitFor waits until cond holds for what the chat was sent, failing the test after timeout.
func (p *Platform) WaitFor(t testing.TB, chat string, timeout time.Duration, what string, cond func([]bridge.Message) bool) []bridge.Message {
	t.Helper()
	return waitOn(t, p, timeout, func() []bridge.Message { return slices.Clone(p.got[chat]) }, cond, func(msgs []bridge.Message) {
		t.Fatalf("%s chat %s: timed out waiting for %s; got:\n%s", p.name, chat, what, Dump(msgs))
	})
}

// WaitText waits until a message whose plain rendering contains substr arrives in the chat, and
// returns it.
func (p *Platform) WaitText(t testing.TB, chat, substr string) bridge.Message {
	t.Helper()
	var found bridge.Message
	p.WaitFor(t, chat, 10*time.Second, "a message containing "+strconvQuote(substr), func(ms []bridge.Message) bool {
		for _, m := range ms {
			if strings.Contains(m.String(), substr) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// Dump renders messages one per line, for failure output.
func Dump(ms []bridge.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("  [" + m.Kind.String() + "] " + m.String() + "\n")
	}
	return b.String()
}

func strconvQuote(s string) string { return "\"" + s + "\"" }

// Run runs the core in the background for the rest of the test. The returned stop ends it (also
// called at cleanup; later calls do nothing) and fails the test if Run failed or did not return.
func Run(t testing.TB, b *bridge.Bridge) (stop func()) {
	t.Helper()
	return Background(t, "bridge", b.Run).Stop
}

// Relayed is every relayed message in ms as its recipient reads them, in order: a combined send
// (Message.Lines) counts once per message it carries, each with its own From and Text.
func Relayed(ms []bridge.Message) []bridge.Message {
	var out []bridge.Message
	for _, m := range ms {
		if m.Kind != bridge.KindRelay {
			continue
		}
		if len(m.Lines) == 0 {
			out = append(out, m)
			continue
		}
		for _, l := range m.Lines {
			out = append(out, bridge.Message{Kind: bridge.KindRelay, From: l.From, Text: l.Text})
		}
	}
	return out
}

// SetInviteLink makes the platform a bridge.Inviter whose links f makes; nil makes it offer none.
func (p *Platform) SetInviteLink(f func(token string) string) {
	p.mu.Lock()
	p.invite = f
	p.mu.Unlock()
}

// InviteLink implements bridge.Inviter when SetInviteLink gave it a way.
func (p *Platform) InviteLink(token string) (string, bool) {
	p.mu.Lock()
	f := p.invite
	p.mu.Unlock()
	if f == nil {
		return "", false
	}
	return f(token), true
}
