package discord

import (
	"context"
	"slices"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/kumo-chat/kumo/bridge"
)

var (
	_ bridge.Editor  = (*Adapter)(nil)
	_ bridge.Reacter = (*Adapter)(nil)
)

// maxReactions is Discord's cap on different reactions on one message.
const maxReactions = 20

// MaxReactions implements bridge.Reacter.
func (a *Adapter) MaxReactions() int { return maxReactions }

// CanReact implements bridge.Reacter: a unicode emoji (custom ones belong to a server).
func (a *Adapter) CanReact(emoji string) bool { return emoji != "" && !strings.Contains(emoji, ":") }

// SetReactions implements bridge.Reacter: a PUT for each emoji the bot does not show yet and a
// DELETE of each it shows no more. What the bot shows is remembered in memory (bounded); one the
// adapter forgot stays.
func (a *Adapter) SetReactions(ctx context.Context, to bridge.Addr, eid bridge.MessageID, emojis []string) error {
	ch := to.Chat
	if ch == "" {
		var err error
		if ch, err = a.dmChannel(ctx, to.User); err != nil {
			return err
		}
	}
	key := ch + "/" + string(eid)
	a.mu.Lock()
	shown := slices.Clone(a.botReactions[key])
	a.mu.Unlock()
	for _, e := range shown {
		if slices.Contains(emojis, e) {
			continue
		}
		if err := a.wait(ctx); err != nil {
			return err
		}
		if err := a.s.MessageReactionRemove(ch, string(eid), e, "@me", discordgo.WithContext(ctx)); err != nil && !isCode(err, codeUnknownMessage) {
			return a.classify(err)
		}
		shown = slices.DeleteFunc(shown, func(s string) bool { return s == e })
		a.setBotReactions(key, shown)
	}
	for _, e := range emojis {
		if slices.Contains(shown, e) {
			continue
		}
		if err := a.wait(ctx); err != nil {
			return err
		}
		if err := a.s.MessageReactionAdd(ch, string(eid), e, discordgo.WithContext(ctx)); err != nil {
			return a.classify(err)
		}
		shown = append(shown, e)
		a.setBotReactions(key, shown)
	}
	return nil
}

// maxReactionsKept bounds the messages whose bot reactions the adapter remembers.
const maxReactionsKept = 10_000

func (a *Adapter) setBotReactions(key string, emojis []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(emojis) == 0 {
		delete(a.botReactions, key)
		return
	}
	if len(a.botReactions) >= maxReactionsKept {
		clear(a.botReactions)
	}
	a.botReactions[key] = slices.Clone(emojis)
}

// EditText implements bridge.Editor: PATCH of the bot's own message, with no mentions parsed.
func (a *Adapter) EditText(ctx context.Context, to bridge.Addr, id bridge.MessageID, m bridge.Message) error {
	ch := to.Chat
	if ch == "" {
		var err error
		if ch, err = a.dmChannel(ctx, to.User); err != nil {
			return err
		}
	}
	content := render(bridge.Message{Kind: m.Kind, From: m.From, Text: m.Text, Part: m.Part, Parts: m.Parts, Lines: m.Lines})
	if err := a.wait(ctx); err != nil {
		return err
	}
	none := &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
	_, err := a.s.ChannelMessageEditComplex(&discordgo.MessageEdit{ID: string(id), Channel: ch, Content: &content, AllowedMentions: none}, discordgo.WithContext(ctx))
	if err != nil {
		return a.classify(err)
	}
	return nil
}

// userOf is the person whose DM channel ch is, as far as the adapter has seen them.
func (a *Adapter) userOf(ch string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for u, c := range a.dms {
		if c == ch {
			return u, true
		}
	}
	return "", false
}

// onEdit is MESSAGE_UPDATE: a person edited their message in the DM.
func (a *Adapter) onEdit(ctx context.Context, h bridge.Handler, m *discordgo.Message) {
	a.mu.Lock()
	botID := a.botID
	a.mu.Unlock()
	if m == nil || m.Author == nil || m.Author.ID == botID || m.Author.Bot || m.GuildID != "" || m.Content == "" {
		return // the bot's own edits, servers, and updates that only unfurl an embed
	}
	from := bridge.Addr{Platform: "discord", User: m.Author.ID, Chat: m.ChannelID}
	// MESSAGE_UPDATE carries the whole message: a Lottie sticker's line stays with the new text.
	_, lines, _ := a.stickers(m.StickerItems)
	h.HandleInbound(ctx, bridge.Inbound{From: from, Action: bridge.ActionEdit, Target: bridge.MessageID(m.ID), ID: bridge.MessageID(m.ID), Text: withLines(m.Content, lines)})
}

// onDelete is MESSAGE_DELETE, which carries only the message and channel ids: the person is the one
// whose DM it is. The bot's own deletions come back too; the core finds no message of theirs by
// such an id and does nothing.
func (a *Adapter) onDelete(ctx context.Context, h bridge.Handler, m *discordgo.Message) {
	if m == nil || m.GuildID != "" || a.takeOwnDelete(m.ID) {
		return
	}
	user, ok := a.userOf(m.ChannelID)
	if !ok {
		return
	}
	from := bridge.Addr{Platform: "discord", User: user, Chat: m.ChannelID}
	h.HandleInbound(ctx, bridge.Inbound{From: from, Action: bridge.ActionUnsend, Target: bridge.MessageID(m.ID)})
}

// onReaction is MESSAGE_REACTION_ADD or _REMOVE in a DM. Custom emoji mean nothing elsewhere and
// are ignored; the bot's own reactions come back too and are ignored.
func (a *Adapter) onReaction(ctx context.Context, h bridge.Handler, r *discordgo.MessageReaction, action bridge.Action) {
	a.mu.Lock()
	botID := a.botID
	a.mu.Unlock()
	if r == nil || r.GuildID != "" || r.UserID == botID || r.Emoji.ID != "" || strings.TrimSpace(r.Emoji.Name) == "" {
		return
	}
	from := bridge.Addr{Platform: "discord", User: r.UserID, Chat: r.ChannelID}
	h.HandleInbound(ctx, bridge.Inbound{From: from, Action: action, Target: bridge.MessageID(r.MessageID), Emoji: r.Emoji.Name})
}

// maxOwnDeletes bounds the set of deletions whose event is awaited (a wipe of a busy DM).
const maxOwnDeletes = 20_000

func (a *Adapter) markOwnDelete(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ownDeletes) >= maxOwnDeletes {
		clear(a.ownDeletes)
	}
	a.ownDeletes[id] = true
}

func (a *Adapter) takeOwnDelete(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ok := a.ownDeletes[id]
	delete(a.ownDeletes, id)
	return ok
}
