package web

import (
	"context"
	"fmt"
	"strconv"

	"github.com/kumo-chat/kumo/bridge"
)

var _ bridge.Deleter = (*Adapter)(nil)

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
	return err
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
