package web

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kumo-chat/kumo/bridge"
)

var (
	_ bridge.Deleter = (*Adapter)(nil)
	_ bridge.Editor  = (*Adapter)(nil)
	_ bridge.Reacter = (*Adapter)(nil)
)

// deleteBatch is how many ids one "delete" event carries: the page removes them at once.
const deleteBatch = 1000

// DeleteBatch implements bridge.Deleter.
func (p *Adapter) DeleteBatch() int { return deleteBatch }

// DeletesTheirs implements bridge.Deleter: the page shows the visitor's own lines itself, and
// removes them when told to.
func (p *Adapter) DeletesTheirs(context.Context, bridge.Addr) bool { return true }

// DeleteMessages implements bridge.Deleter: the session forgets those messages (a reconnecting
// page does not get them again) and the page is told to remove them.
func (p *Adapter) DeleteMessages(_ context.Context, to bridge.Addr, ids []bridge.MessageID) error {
	if to.Platform != Name {
		return fmt.Errorf("web: address of platform %q: %w", to.Platform, bridge.ErrRejected)
	}
	p.mu.Lock()
	s := p.sessions[to.User]
	p.mu.Unlock()
	if s == nil {
		return fmt.Errorf("web: visitor's page is closed: %w", bridge.ErrRecipientGone)
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	_, err := s.remove(out)
	gone := make(map[string]bool, len(out))
	for _, id := range out {
		gone[id] = true
	}
	p.blobs.drop(s.id, func(b *blob) bool { return gone[strconv.FormatUint(b.seq, 10)] })
	return err
}

func (p *Adapter) session(to bridge.Addr) (*session, error) {
	if to.Platform != Name {
		return nil, fmt.Errorf("web: address of platform %q: %w", to.Platform, bridge.ErrRejected)
	}
	p.mu.Lock()
	s := p.sessions[to.User]
	p.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("web: visitor's page is closed: %w", bridge.ErrRecipientGone)
	}
	return s, nil
}

// EditText implements bridge.Editor: the page replaces the message's text.
func (p *Adapter) EditText(_ context.Context, to bridge.Addr, id bridge.MessageID, m bridge.Message) error {
	s, err := p.session(to)
	if err != nil {
		return err
	}
	return s.edit(string(id), m)
}

// maxReactions is how many different reactions the page shows on one message.
const maxReactions = 12

// MaxReactions implements bridge.Reacter.
func (p *Adapter) MaxReactions() int { return maxReactions }

// CanReact implements bridge.Reacter: the page shows any emoji (as text).
func (p *Adapter) CanReact(string) bool { return true }

// SetReactions implements bridge.Reacter: the page shows the others' reactions under the message
// (kumo's or the visitor's own line).
func (p *Adapter) SetReactions(_ context.Context, to bridge.Addr, id bridge.MessageID, emojis []string) error {
	s, err := p.session(to)
	if err != nil {
		return err
	}
	if pageID(string(id)) == "" {
		return fmt.Errorf("web: %w: not a message of the page", bridge.ErrRejected)
	}
	_, err = s.enqueueForce(event{Type: "react", Target: string(id), Reactions: append([]string{}, emojis...)})
	return err
}

// pageID is a message id the page sent back: kumo's message by seq ("12") or the visitor's own line
// ("o3"); "" for anything else.
func pageID(id string) bridge.MessageID {
	own := strings.HasPrefix(id, "o")
	n := strings.TrimPrefix(id, "o")
	if n == "" || len(n) > 12 {
		return ""
	}
	if _, err := strconv.ParseUint(n, 10, 64); err != nil {
		return ""
	}
	if own {
		return bridge.MessageID("o" + n)
	}
	return bridge.MessageID(n)
}

// ownID is the message id of a visitor's own line: "o" and the page's number for it, or "" when the
// page sent none (or nonsense).
func ownID(page string) bridge.MessageID {
	if page == "" || len(page) > 12 {
		return ""
	}
	if _, err := strconv.ParseUint(page, 10, 64); err != nil {
		return ""
	}
	return bridge.MessageID("o" + page)
}
