package matrix

import (
	"context"

	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
)

var _ bridge.Editor = (*Adapter)(nil)

// EditText implements bridge.Editor: an m.replace of the bot's event (encrypted like the room), its
// m.new_content rendered as a send would be.
func (a *Adapter) EditText(ctx context.Context, to bridge.Addr, eid bridge.MessageID, m bridge.Message) error {
	roomID, err := a.target(ctx, to)
	if err != nil {
		return err
	}
	content := render(bridge.Message{Kind: m.Kind, From: m.From, Text: m.Text, Part: m.Part, Parts: m.Parts})
	content.SetEdit(id.EventID(eid))
	_, err = a.send(ctx, roomID, content)
	return err
}

// maxReactionsKept bounds the reactions the adapter remembers to tell a redaction of one (an
// unreact) from a redaction of a message (an unsend).
const maxReactionsKept = 10_000

type reactionRef struct {
	on  id.EventID
	key string
}

func (a *Adapter) rememberReaction(evt, on id.EventID, key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reactions) >= maxReactionsKept {
		clear(a.reactions)
	}
	a.reactions[evt] = reactionRef{on, key}
}

func (a *Adapter) takeReaction(evt id.EventID) (id.EventID, string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.reactions[evt]
	delete(a.reactions, evt)
	return r.on, r.key, ok
}
