package discordtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Replies, edits, deletions and reactions in DMs, as Discord has them: message_reference on a send
// (rest.go), PATCH of the bot's own messages, and what a person does in their DM arriving as
// MESSAGE_CREATE (type 19, a reply), MESSAGE_UPDATE, MESSAGE_DELETE (only id and channel_id), and
// MESSAGE_REACTION_ADD/REMOVE, each only to a bot whose intents ask for it.

// editMessage is PATCH /channels/{channel.id}/messages/{message.id}: the bot edits its own message
// (a person's is 403 50005), a missing one is 10008, content follows the send's rules.
func (s *Server) editMessage(w http.ResponseWriter, r *http.Request, channelID, messageID string) {
	var b messageBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidFormBody, "Invalid Form Body")
		return
	}
	c, i, ok := s.lockMessage(w, channelID, messageID)
	if !ok {
		return
	}
	switch {
	case c.messages[i].AuthorID != s.Bot.ID:
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, CodeCannotEditOthers, "Cannot edit a message authored by another user")
		return
	}
	m := c.messages[i]
	if !validate(w, messageBody{Content: b.Content}, m.Attachments) {
		s.mu.Unlock()
		return
	}
	m.Content = b.Content
	m.Edits++
	if b.AllowedMentions != nil {
		m.AllowedMentions = b.AllowedMentions
	}
	d := s.messageJSON(m)
	s.notifyLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, d)
	s.dispatch("MESSAGE_UPDATE", IntentDirectMessages, d)
}

// CodeCannotEditOthers is Discord's 50005.
const CodeCannotEditOthers = 50005

// ReplyDM makes the user reply to message replyTo of their DM with content (MESSAGE_CREATE, type 19,
// with message_reference). It returns the new message's id.
func (s *Server) ReplyDM(userID, replyTo, content string) string {
	s.mu.Lock()
	ch := s.dmChannelLocked(userID)
	id := s.newID()
	author := s.userJSON(userID)
	m := &Message{ID: id, ChannelID: ch, AuthorID: userID, Content: content, ReplyTo: replyTo}
	s.channels[ch].messages = append(s.channels[ch].messages, m)
	s.notifyLocked()
	s.mu.Unlock()
	s.dispatch("MESSAGE_CREATE", IntentDirectMessages, map[string]any{
		"id": id, "channel_id": ch, "author": author, "content": content, "type": 19,
		"message_reference": map[string]any{"type": 0, "message_id": replyTo, "channel_id": ch},
		"timestamp":         time.Now().UTC().Format(time.RFC3339Nano), "mentions": []any{}, "attachments": []any{}, "embeds": []any{},
	})
	return id
}

// EditDM makes the user edit their message id to content (MESSAGE_UPDATE).
func (s *Server) EditDM(userID, id, content string) {
	s.mu.Lock()
	ch := s.dmChannelLocked(userID)
	author := s.userJSON(userID)
	var stickers []Sticker
	for _, m := range s.channels[ch].messages {
		if m.ID == id && m.AuthorID == userID {
			m.Content = content
			m.Edits++
			stickers = m.Stickers
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	// Discord sends the whole updated message: its stickers stay on it.
	d := map[string]any{
		"id": id, "channel_id": ch, "author": author, "content": content, "type": 0,
		"edited_timestamp": time.Now().UTC().Format(time.RFC3339Nano), "mentions": []any{}, "attachments": []any{}, "embeds": []any{},
	}
	if len(stickers) > 0 {
		d["sticker_items"] = stickerItems(stickers)
	}
	s.dispatch("MESSAGE_UPDATE", IntentDirectMessages, d)
}

// DeleteDM makes the user delete their message id: MESSAGE_DELETE carries only its id and channel.
func (s *Server) DeleteDM(userID, id string) {
	s.mu.Lock()
	ch := s.dmChannelLocked(userID)
	c := s.channels[ch]
	c.messages = slices.DeleteFunc(c.messages, func(m *Message) bool { return m.ID == id && m.AuthorID == userID })
	s.notifyLocked()
	s.mu.Unlock()
	s.dispatch("MESSAGE_DELETE", IntentDirectMessages, map[string]any{"id": id, "channel_id": ch})
}

// ReactDM makes the user add (or remove) a unicode emoji reaction on message id of their DM.
func (s *Server) ReactDM(userID, id, emoji string, add bool) {
	s.mu.Lock()
	ch := s.dmChannelLocked(userID)
	s.mu.Unlock()
	t := "MESSAGE_REACTION_ADD"
	if !add {
		t = "MESSAGE_REACTION_REMOVE"
	}
	s.dispatch(t, IntentDirectMessageReactions, map[string]any{
		"user_id": userID, "channel_id": ch, "message_id": id, "emoji": map[string]any{"id": nil, "name": emoji},
	})
}

// maxReactions is Discord's cap on different reactions on one message (30010).
const maxReactions = 20

// CodeUnknownEmoji and CodeMaxReactions are Discord's answers to a reaction it cannot take.
const (
	CodeUnknownEmoji = 10014
	CodeMaxReactions = 30010
)

// botReaction is PUT (add) or DELETE (remove) /channels/{c}/messages/{m}/reactions/{emoji}/@me, on
// any message of the channel (the person's too). A custom emoji ("name:id") the fake has none of is
// 10014; a 21st different reaction is 30010. Both answer 204 when nothing changes.
func (s *Server) botReaction(w http.ResponseWriter, channelID, messageID, emoji string, add bool) {
	c, i, ok := s.lockMessage(w, channelID, messageID)
	if !ok {
		return
	}
	if emoji == "" || strings.Contains(emoji, ":") {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, CodeUnknownEmoji, "Unknown Emoji")
		return
	}
	m := c.messages[i]
	j := slices.Index(m.BotReactions, emoji)
	switch {
	case add && j < 0 && len(m.BotReactions) >= maxReactions:
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, CodeMaxReactions, "Maximum number of reactions reached (20)")
		return
	case add && j < 0:
		m.BotReactions = append(m.BotReactions, emoji)
	case !add && j >= 0:
		m.BotReactions = slices.Delete(m.BotReactions, j, j+1)
	}
	s.notifyLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
