package bridgetest

import (
	"context"
	"fmt"
	"slices"

	"github.com/kumo-chat/kumo/bridge"
)

// Conversing is a fake messenger with every conversation ability: it deletes (like Deleting),
// edits kumo's messages in place (bridge.Editor) and shows the bot's reactions (bridge.Reacter), at
// most maxReact per message and only those in allowed (nil allows any), the way Telegram limits bots.
// What each chat shows (Chat, WaitChat) carries the edits and reactions.
type Conversing struct {
	*Deleting
	maxReact int
	allowed  []string
}

// NewConversing makes a fake platform that deletes both sides in batches of batch, edits, and
// reacts with at most maxReact of allowed.
func NewConversing(name string, limits bridge.Limits, batch, maxReact int, allowed []string) *Conversing {
	return &Conversing{Deleting: NewDeleting(name, limits, batch, true), maxReact: maxReact, allowed: allowed}
}

// EditText implements bridge.Editor: only kumo's own messages that the chat still shows.
func (c *Conversing) EditText(_ context.Context, to bridge.Addr, id bridge.MessageID, m bridge.Message) error {
	p := c.Platform
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.chats[to.Chat] {
		if s.ID == id && !s.Own {
			if s.Msg.Kind != m.Kind {
				return fmt.Errorf("edit turns a %s into a %s: %w", s.Msg.Kind, m.Kind, bridge.ErrRejected)
			}
			m.ReplyTo = s.Msg.ReplyTo // an edit keeps what the message replied to
			p.chats[to.Chat][i].Msg = m
			p.chats[to.Chat][i].Edits++
			p.wake()
			return nil
		}
	}
	return fmt.Errorf("message to edit not found: %w", bridge.ErrRejected)
}

// MaxReactions implements bridge.Reacter.
func (c *Conversing) MaxReactions() int { return c.maxReact }

// CanReact implements bridge.Reacter.
func (c *Conversing) CanReact(emoji string) bool {
	return c.allowed == nil || slices.Contains(c.allowed, emoji)
}

// SetReactions implements bridge.Reacter, with the limits a bot has: too many or a refused emoji
// is an error and changes nothing.
func (c *Conversing) SetReactions(_ context.Context, to bridge.Addr, id bridge.MessageID, emojis []string) error {
	if len(emojis) > c.maxReact {
		return fmt.Errorf("%d reactions, a bot may set %d: %w", len(emojis), c.maxReact, bridge.ErrRejected)
	}
	for _, e := range emojis {
		if !c.CanReact(e) {
			return fmt.Errorf("reaction %q invalid: %w", e, bridge.ErrRejected)
		}
	}
	p := c.Platform
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.chats[to.Chat] {
		if s.ID == id {
			p.chats[to.Chat][i].Reactions = slices.Clone(emojis)
			p.wake()
			return nil
		}
	}
	return fmt.Errorf("message to react to not found: %w", bridge.ErrRejected)
}
