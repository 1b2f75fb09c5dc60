package telegram

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/kumo-chat/kumo/bridge"
)

var (
	_ bridge.Editor  = (*Adapter)(nil)
	_ bridge.Reacter = (*Adapter)(nil)
)

// reactionEmoji are the emoji the Bot API lets a bot react with (ReactionTypeEmoji), without the
// variation selector other platforms add ("❤️" is "❤" here).
var reactionEmoji = []string{"❤", "👍", "👎", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🤬", "😢", "🎉", "🤩",
	"🤮", "💩", "🙏", "👌", "🕊", "🤡", "🥱", "🥴", "😍", "🐳", "❤\u200d🔥", "🌚", "🌭", "💯", "🤣", "⚡", "🍌",
	"🏆", "💔", "🤨", "😐", "🍓", "🍾", "💋", "🖕", "😈", "😴", "😭", "🤓", "👻", "👨\u200d💻", "👀", "🎃", "🙈",
	"😇", "😨", "🤝", "✍", "🤗", "🫡", "🎅", "🎄", "☃", "💅", "🤪", "🗿", "🆒", "💘", "🙉", "🦄", "😘", "💊",
	"🙊", "😎", "👾", "🤷\u200d♂", "🤷", "🤷\u200d♀", "😡"}

// canonical drops variation selectors: Telegram lists its reactions without them.
func canonical(emoji string) string { return strings.ReplaceAll(emoji, "\uFE0F", "") }

// EditText implements bridge.Editor with editMessageText, paced like a send. A text Telegram finds
// unchanged is no error.
func (a *Adapter) EditText(ctx context.Context, to bridge.Addr, id bridge.MessageID, m bridge.Message) error {
	chatID, err := chatOf(to)
	if err != nil {
		return err
	}
	msgID, err := strconv.Atoi(string(id))
	if err != nil {
		return fmt.Errorf("telegram: %w: not a message id", bridge.ErrRejected)
	}
	text := render(bridge.Message{Kind: m.Kind, From: m.From, Text: m.Text, Part: m.Part, Parts: m.Parts, Lines: m.Lines})
	err = a.send(ctx, chatID, func() error {
		_, err := a.bot.EditMessageText(ctx, &bot.EditMessageTextParams{
			ChatID: chatID, MessageID: msgID, Text: text, ParseMode: models.ParseModeHTML,
			LinkPreviewOptions: &models.LinkPreviewOptions{IsDisabled: bot.True()},
		})
		return err
	})
	if err != nil && strings.Contains(err.Error(), "message is not modified") {
		return nil
	}
	return err
}

// MaxReactions implements bridge.Reacter: a bot sets one reaction per message.
func (a *Adapter) MaxReactions() int { return 1 }

// CanReact implements bridge.Reacter: Telegram's fixed list.
func (a *Adapter) CanReact(emoji string) bool {
	return slices.Contains(reactionEmoji, canonical(emoji))
}

// SetReactions implements bridge.Reacter with setMessageReaction (none removes the bot's).
func (a *Adapter) SetReactions(ctx context.Context, to bridge.Addr, id bridge.MessageID, emojis []string) error {
	chatID, err := chatOf(to)
	if err != nil {
		return err
	}
	msgID, err := strconv.Atoi(string(id))
	if err != nil {
		return fmt.Errorf("telegram: %w: not a message id", bridge.ErrRejected)
	}
	rs := make([]models.ReactionType, 0, len(emojis))
	for _, e := range emojis {
		rs = append(rs, models.ReactionType{Type: models.ReactionTypeTypeEmoji, ReactionTypeEmoji: &models.ReactionTypeEmoji{Type: models.ReactionTypeTypeEmoji, Emoji: canonical(e)}})
	}
	return a.send(ctx, chatID, func() error {
		_, err := a.bot.SetMessageReaction(ctx, &bot.SetMessageReactionParams{ChatID: chatID, MessageID: msgID, Reaction: rs})
		return err
	})
}

// onReaction turns a person's changed reactions on a message in their DM into one Inbound per
// emoji put on or taken off. Custom and paid reactions have no meaning elsewhere and are ignored.
func (a *Adapter) onReaction(ctx context.Context, r *models.MessageReactionUpdated) {
	if r.User == nil || r.User.IsBot || r.Chat.Type != models.ChatTypePrivate {
		return
	}
	from := bridge.Addr{Platform: Name, User: strconv.FormatInt(r.User.ID, 10), Chat: strconv.FormatInt(r.Chat.ID, 10)}
	target := bridge.MessageID(strconv.Itoa(r.MessageID))
	old, now := emojisOf(r.OldReaction), emojisOf(r.NewReaction)
	for _, e := range old {
		if !slices.Contains(now, e) {
			a.handler.HandleInbound(ctx, bridge.Inbound{From: from, Action: bridge.ActionUnreact, Target: target, Emoji: e})
		}
	}
	for _, e := range now {
		if !slices.Contains(old, e) {
			a.handler.HandleInbound(ctx, bridge.Inbound{From: from, Action: bridge.ActionReact, Target: target, Emoji: e})
		}
	}
}

func emojisOf(rs []models.ReactionType) []string {
	var out []string
	for _, r := range rs {
		if r.Type == models.ReactionTypeTypeEmoji && r.ReactionTypeEmoji != nil {
			out = append(out, r.ReactionTypeEmoji.Emoji)
		}
	}
	return out
}
