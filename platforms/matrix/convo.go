package matrix

import (
	"context"
	"fmt"
	"slices"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
)

var (
	_ bridge.Editor  = (*Adapter)(nil)
	_ bridge.Reacter = (*Adapter)(nil)
)

// EditText implements bridge.Editor: an m.replace of the bot's event (encrypted like the room), its
// m.new_content rendered as a send would be.
func (a *Adapter) EditText(ctx context.Context, to bridge.Addr, eid bridge.MessageID, m bridge.Message) error {
	roomID, err := a.target(ctx, to)
	if err != nil {
		return err
	}
	content := render(bridge.Message{Kind: m.Kind, From: m.From, Text: m.Text, Part: m.Part, Parts: m.Parts, Lines: m.Lines})
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

// maxBotReactions is how many reactions kumo shows on one event: Matrix sets no limit, a client's
// row of reactions does.
const maxBotReactions = 20

// MaxReactions implements bridge.Reacter.
func (a *Adapter) MaxReactions() int { return maxBotReactions }

// CanReact implements bridge.Reacter: an annotation's key may be any text.
func (a *Adapter) CanReact(string) bool { return true }

// SetReactions implements bridge.Reacter: an m.reaction (encrypted like the room) for each emoji the
// bot does not show yet, and a redaction of each of its reactions no longer wanted. Which reaction
// event is which is remembered in memory (bounded): one the adapter forgot stays.
func (a *Adapter) SetReactions(ctx context.Context, to bridge.Addr, eid bridge.MessageID, emojis []string) error {
	roomID, err := a.target(ctx, to)
	if err != nil {
		return err
	}
	key := roomID.String() + "|" + string(eid)
	a.mu.Lock()
	shown := a.botReactions[key]
	var drop []bridge.MessageID
	var dropKeys []string
	for k, ev := range shown {
		if !slices.Contains(emojis, k) {
			drop, dropKeys = append(drop, bridge.MessageID(ev)), append(dropKeys, k)
		}
	}
	var add []string
	for _, e := range emojis {
		if _, ok := shown[e]; !ok {
			add = append(add, e)
		}
	}
	a.mu.Unlock()
	for i, ev := range drop {
		if err := a.DeleteMessages(ctx, to, []bridge.MessageID{ev}); err != nil {
			return err
		}
		a.setBotReaction(key, dropKeys[i], "")
	}
	for _, e := range add {
		if err := a.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("matrix: %w", err)
		}
		resp, err := a.cli.SendMessageEvent(ctx, roomID, event.EventReaction, &event.ReactionEventContent{
			RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: id.EventID(eid), Key: e}})
		if err != nil {
			return classify(err)
		}
		a.setBotReaction(key, e, resp.EventID)
	}
	return nil
}

func (a *Adapter) setBotReaction(key, emoji string, ev id.EventID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ev == "" {
		delete(a.botReactions[key], emoji)
		if len(a.botReactions[key]) == 0 {
			delete(a.botReactions, key)
		}
		return
	}
	if len(a.botReactions) >= maxReactionsKept {
		clear(a.botReactions)
	}
	if a.botReactions[key] == nil {
		a.botReactions[key] = map[string]id.EventID{}
	}
	a.botReactions[key][emoji] = ev
}
