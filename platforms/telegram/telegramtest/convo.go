package telegramtest

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// Replies, edits and reactions as the Bot API has them: reply_parameters on sendMessage,
// editMessageText, setMessageReaction, and the edited_message and message_reaction updates (the
// latter only for a bot that lists it in allowed_updates).

// ReactionEmoji are the emoji a bot may react with (ReactionTypeEmoji in the Bot API reference):
// any other is REACTION_INVALID.
var ReactionEmoji = []string{"❤", "👍", "👎", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🤬", "😢", "🎉", "🤩",
	"🤮", "💩", "🙏", "👌", "🕊", "🤡", "🥱", "🥴", "😍", "🐳", "❤\u200d🔥", "🌚", "🌭", "💯", "🤣", "⚡", "🍌",
	"🏆", "💔", "🤨", "😐", "🍓", "🍾", "💋", "🖕", "😈", "😴", "😭", "🤓", "👻", "👨\u200d💻", "👀", "🎃", "🙈",
	"😇", "😨", "🤝", "✍", "🤗", "🫡", "🎅", "🎄", "☃", "💅", "🤪", "🗿", "🆒", "💘", "🙉", "🦄", "😘", "💊",
	"🙊", "😎", "👾", "🤷\u200d♂", "🤷", "🤷\u200d♀", "😡"}

// maxBotReactions is how many reactions a bot may set on one message ("as non-premium users").
const maxBotReactions = 1

var defaultOff = []string{"chat_member", "message_reaction", "message_reaction_count"}

func (s *Server) allowsLocked(kind string) bool {
	if s.allowed == nil {
		return !slices.Contains(defaultOff, kind)
	}
	return slices.Contains(s.allowed, kind)
}

// messageLocked renders a message the chat shows as the Bot API's Message (for reply_to_message):
// the user's own as from `user`, the bot's as from the bot.
func (s *Server) messageLocked(cs *chatState, m Shown, user User) map[string]any {
	from := s.me
	if m.Incoming {
		from = user
	}
	out := map[string]any{"message_id": m.MessageID, "from": from, "chat": cs.chat, "date": m.At.Unix(), "text": m.Text}
	if len(m.entities) > 0 {
		out["entities"] = m.entities
	}
	return out
}

// replyOfLocked reads reply_parameters: the message must exist in the chat unless
// allow_sending_without_reply is set, when a missing one makes no reply.
func replyOfLocked(cs *chatState, f form) (int, *apiError) {
	raw := f.get("reply_parameters")
	if raw == "" {
		return 0, nil
	}
	var p struct {
		MessageID                int  `json:"message_id"`
		AllowSendingWithoutReply bool `json:"allow_sending_without_reply"`
	}
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return 0, badRequest("can't parse reply parameters JSON object")
	}
	if indexOf(cs, p.MessageID) >= 0 {
		return p.MessageID, nil
	}
	if p.AllowSendingWithoutReply {
		return 0, nil
	}
	return 0, badRequest("message to be replied not found")
}

// editMessageText edits the text of one of the bot's messages, by the Bot API's rules: the message
// must exist and be the bot's own, and the new text and entities must differ from the old.
func (s *Server) editMessageText(f form) (any, *apiError) {
	if f.get("inline_message_id") != "" {
		return nil, badRequest("the fake has no inline messages")
	}
	_, text, ents, e := messageText(f, "MESSAGE_TOO_LONG")
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.targetLocked(f)
	if e != nil {
		return nil, e
	}
	id, err := strconv.Atoi(f.get("message_id"))
	if err != nil || id <= 0 {
		return nil, badRequest("message identifier is not specified")
	}
	i := indexOf(cs, id)
	if i < 0 {
		return nil, badRequest("message to edit not found")
	}
	m := &cs.shows[i]
	if m.Incoming {
		return nil, badRequest("message can't be edited")
	}
	if m.Text == text && slices.Equal(m.entities, ents) {
		return nil, badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
	}
	if e := s.admitLocked(cs); e != nil {
		return nil, e
	}
	m.Text, m.entities = text, ents
	m.Edits++
	s.notifyLocked()
	out := s.messageLocked(cs, *m, User{})
	out["edit_date"] = time.Now().Unix()
	return out, nil
}

// setMessageReaction sets the bot's reactions on a message of the chat (the bot's or the user's):
// at most one, from ReactionEmoji; none removes them.
func (s *Server) setMessageReaction(f form) (any, *apiError) {
	var reactions []struct {
		Type  string `json:"type"`
		Emoji string `json:"emoji"`
	}
	if raw := f.get("reaction"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &reactions); err != nil {
			return nil, badRequest("can't parse reaction types JSON object")
		}
	}
	if len(reactions) > maxBotReactions {
		return nil, badRequest("REACTIONS_TOO_MANY")
	}
	var emojis []string
	for _, r := range reactions {
		if r.Type != "emoji" || !slices.Contains(ReactionEmoji, r.Emoji) {
			return nil, badRequest("REACTION_INVALID")
		}
		emojis = append(emojis, r.Emoji)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.targetLocked(f)
	if e != nil {
		return nil, e
	}
	id, _ := strconv.Atoi(f.get("message_id"))
	i := indexOf(cs, id)
	if i < 0 {
		return nil, badRequest("MESSAGE_ID_INVALID")
	}
	cs.shows[i].Reactions = emojis
	s.notifyLocked()
	return true, nil
}

// InjectEdit makes the user edit their message id to text: Telegram sends edited_message. It
// returns the update_id (0 if the bot's allowed_updates leave edits out).
func (s *Server) InjectEdit(from User, id int, text string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chatLocked(Private(from))
	i := indexOf(cs, id)
	if i < 0 || !cs.shows[i].Incoming {
		panic("telegramtest: the user can only edit their own message")
	}
	cs.shows[i].Text = text
	cs.shows[i].Edits++
	msg := s.messageLocked(cs, cs.shows[i], from)
	msg["edit_date"] = time.Now().Unix()
	if cs.shows[i].ReplyTo != 0 {
		if j := indexOf(cs, cs.shows[i].ReplyTo); j >= 0 {
			msg["reply_to_message"] = s.messageLocked(cs, cs.shows[j], from)
		}
	}
	return s.queueLocked("edited_message", msg)
}

// InjectReaction makes the user change their reactions on message id of their chat with the bot
// from old to now: Telegram sends message_reaction, if the bot asked for it in allowed_updates.
func (s *Server) InjectReaction(from User, id int, old, now []string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chatLocked(Private(from))
	if indexOf(cs, id) < 0 {
		panic("telegramtest: no such message to react to")
	}
	types := func(es []string) []map[string]string {
		out := []map[string]string{}
		for _, e := range es {
			out = append(out, map[string]string{"type": "emoji", "emoji": e})
		}
		return out
	}
	return s.queueLocked("message_reaction", map[string]any{
		"chat": cs.chat, "message_id": id, "user": from, "date": time.Now().Unix(),
		"old_reaction": types(old), "new_reaction": types(now),
	})
}
