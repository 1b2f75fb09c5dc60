package discordtest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Discord's file limits for a bot in a DM: 10 MiB per file without a boost, answered over it with
// 413 and code 40005 "Request entity too large".
const (
	MaxFile                = 10 << 20
	CodeRequestEntityLarge = 40005
)

// fileTooBig refuses an upload with a file over MaxFile, as Discord does.
func fileTooBig(w http.ResponseWriter, files []Attachment) bool {
	for _, f := range files {
		if len(f.Data) > MaxFile {
			writeError(w, http.StatusRequestEntityTooLarge, CodeRequestEntityLarge, "Request entity too large")
			return true
		}
	}
	return false
}

// storeAttachmentLocked keeps a file's bytes for its CDN address and returns the address.
func (s *Server) storeAttachmentLocked(id string, a Attachment) string {
	if s.files == nil {
		s.files = map[string]Attachment{}
	}
	s.files[id] = a
	return s.URL + "/attachments/" + id + "/" + a.Filename
}

// serveAttachment answers GET /attachments/{id}/{name}: the CDN address of an attachment.
func (s *Server) serveAttachment(w http.ResponseWriter, r *http.Request) {
	id, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/attachments/"), "/")
	s.mu.Lock()
	a, ok := s.files[id]
	s.downloads++
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if a.ContentType != "" {
		w.Header().Set("Content-Type", a.ContentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Data)))
	_, _ = w.Write(a.Data)
}

// Downloads counts GETs of CDN addresses: attachments' and stickers'.
func (s *Server) Downloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads
}

// FlagVoiceMessage marks a message that is a voice message (Discord's IS_VOICE_MESSAGE).
const FlagVoiceMessage = 1 << 13

// SendDMFiles makes the user send files in their DM with the bot, with content as their text;
// flags are the message's (FlagVoiceMessage for a voice note). It returns the message id.
func (s *Server) SendDMFiles(userID, content string, flags int, files ...Attachment) string {
	return s.userDM(userID, content, flags, files, nil)
}

// userDM stores a message the user sent in their DM with the bot and delivers it as MESSAGE_CREATE,
// with its files' CDN addresses and its stickers as sticker_items (sticker.go).
func (s *Server) userDM(userID, content string, flags int, files []Attachment, stickers []Sticker) string {
	s.mu.Lock()
	ch := s.dmChannelLocked(userID)
	id := s.newID()
	author := s.userJSON(userID)
	m := &Message{ID: id, ChannelID: ch, AuthorID: userID, Content: content, Flags: flags, Attachments: files, Stickers: stickers}
	if c := s.channels[ch]; c != nil {
		c.messages = append(c.messages, m)
	}
	atts := []messageAttachmentJSON{}
	for _, f := range files {
		aid := s.newID()
		u := s.storeAttachmentLocked(aid, f)
		atts = append(atts, messageAttachmentJSON{ID: aid, Filename: f.Filename, ContentType: f.ContentType, Size: len(f.Data), URL: u, ProxyURL: u})
	}
	s.notifyLocked()
	s.mu.Unlock()
	d := map[string]any{
		"id": id, "channel_id": ch, "author": author, "content": content, "type": 0, "flags": flags,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "tts": false, "mention_everyone": false,
		"mentions": []any{}, "mention_roles": []any{}, "attachments": atts, "embeds": []any{}, "pinned": false,
	}
	if len(stickers) > 0 {
		// Discord sends sticker_items only on a message that has some.
		d["sticker_items"] = stickerItems(stickers)
	}
	s.dispatch("MESSAGE_CREATE", IntentDirectMessages, d)
	return id
}
