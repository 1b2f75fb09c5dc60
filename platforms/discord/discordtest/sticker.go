package discordtest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Sticker formats: a sticker object's format_type.
const (
	StickerPNG    = 1
	StickerAPNG   = 2
	StickerLottie = 3 // Discord's own animated stickers: a Lottie JSON animation, no image
	StickerGIF    = 4
)

// Sticker is a sticker a person can send: one of Discord's own or a server's custom one.
type Sticker struct {
	ID     string
	Name   string // a server's custom sticker is named by whoever made it
	Format int    // StickerPNG, StickerAPNG, StickerLottie or StickerGIF
	// Data is what the CDN serves for it: the PNG, APNG or GIF, or a Lottie's JSON.
	Data []byte
}

// AddSticker makes a sticker the CDN serves (see serveSticker) and returns it, for SendDMSticker.
// A Sticker made without it (any ID) is one the CDN does not know.
func (s *Server) AddSticker(name string, format int, data []byte) Sticker {
	st := Sticker{ID: s.newID(), Name: name, Format: format, Data: slices.Clone(data)}
	s.mu.Lock()
	if s.stickers == nil {
		s.stickers = map[string]Sticker{}
	}
	s.stickers[st.ID] = st
	s.mu.Unlock()
	return st
}

// SendDMSticker makes the user send stickers (Discord allows up to 3 on a message) in their DM with
// the bot, with content as the message's text, delivered as MESSAGE_CREATE with sticker_items. It
// returns the message id.
func (s *Server) SendDMSticker(userID, content string, stickers ...Sticker) string {
	return s.userDM(userID, content, 0, nil, slices.Clone(stickers))
}

// stickerItems is a message's sticker_items: the partial sticker objects Discord puts on it
// (id, name, format_type; never the image, which is on the CDN).
func stickerItems(stickers []Sticker) []map[string]any {
	items := make([]map[string]any, 0, len(stickers))
	for _, st := range stickers {
		items = append(items, map[string]any{"id": st.ID, "name": st.Name, "format_type": st.Format})
	}
	return items
}

// stickerExt is the extension the CDN serves a sticker of format under: PNG for PNG and APNG (the
// APNG's frames inside), GIF for GIF, JSON for a Lottie animation.
func stickerExt(format int) string {
	switch format {
	case StickerPNG, StickerAPNG:
		return ".png"
	case StickerGIF:
		return ".gif"
	case StickerLottie:
		return ".json"
	}
	return ""
}

// serveSticker answers GET /stickers/{id}.{png,gif,json}, Discord's sticker address on
// media.discordapp.net (the only host serving GIF stickers; discord-api-docs#6831). A sticker it
// does not know is 404, as at the CDN. Each sticker is served in its own format only: the real
// media proxy may convert some, which no client should count on.
func (s *Server) serveSticker(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/stickers/")
	dot := max(strings.LastIndexByte(name, '.'), 0)
	id, ext := name[:dot], name[dot:]
	s.mu.Lock()
	st, ok := s.stickers[id]
	s.downloads++
	s.notifyLocked()
	s.mu.Unlock()
	if !ok || ext == "" || stickerExt(st.Format) != ext {
		http.NotFound(w, r)
		return
	}
	ct := map[string]string{".png": "image/png", ".gif": "image/gif", ".json": "application/json"}[ext]
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(st.Data)))
	_, _ = w.Write(st.Data)
}
