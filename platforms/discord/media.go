package discord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/kumo-chat/kumo/bridge"
)

// maxFile is what a bot may upload per file in a DM without a server boost: 10 MiB.
const maxFile = 10 << 20

// flagVoiceMessage marks a Discord voice message (IS_VOICE_MESSAGE).
const flagVoiceMessage = 1 << 13

var _ bridge.MediaSender = (*Adapter)(nil)

// attachments turns a message's files into the bridge's attachments, downloaded from Discord's CDN
// only when the bridge asks, up to its limit.
func (a *Adapter) attachments(m *discordgo.Message) []bridge.Attachment {
	var out []bridge.Attachment
	for _, at := range m.Attachments {
		if at == nil || at.URL == "" {
			continue
		}
		mt := strings.ToLower(strings.TrimSpace(strings.Split(at.ContentType, ";")[0]))
		kind := bridge.MediaFile
		switch {
		case m.Flags&flagVoiceMessage != 0:
			kind = bridge.MediaVoice
		case mt == "image/gif":
			kind = bridge.MediaAnimation
		case strings.HasPrefix(mt, "image/"):
			kind = bridge.MediaPhoto
		case strings.HasPrefix(mt, "audio/"):
			kind = bridge.MediaAudio
		case strings.HasPrefix(mt, "video/"):
			kind = bridge.MediaVideo
		}
		out = append(out, bridge.Attachment{Kind: kind, MIME: mt, Name: at.Filename, Size: int64(at.Size), Fetch: a.fetcher(at.URL)})
	}
	return out
}

// stickerHost serves stickers' images. GIF stickers are only on the media proxy, not on
// cdn.discordapp.com (discord-api-docs#6831), and PNG ones are there as well, so one host serves
// every sticker. discordgo has no endpoint for them.
const stickerHost = "media.discordapp.net"

// maxSticker bounds a sticker's download. Discord takes sticker uploads of at most 512 KiB; twice
// that leaves room, and spares the bridge reserving its whole media limit for a small image whose
// size Discord does not declare.
const maxSticker = 1 << 20

// stickerLine stands in for a sticker no other platform can show: a Lottie animation (Discord's own
// animated stickers) has no image to send. It says only that a sticker was sent: a sticker's name
// (a server's custom one is named by whoever made it) could tell who sent it, or from which server.
// It is shorter than a room password may be (rooms.MinPasswordLen, 12), so that from someone in no
// room the core does not take it for a guess at one.
const stickerLine = "🏷️ sticker"

// stickers sorts a message's stickers: those Discord serves as an image become attachments of
// Kind bridge.MediaSticker, static ones and animated (APNG, GIF) alike, fetched from the CDN like
// files; a Lottie one becomes a stickerLine; other reports one of a format this code does not know.
func (a *Adapter) stickers(items []*discordgo.StickerItem) (atts []bridge.Attachment, lines []string, other bool) {
	for _, st := range items {
		if st == nil {
			continue
		}
		var ext, mt string
		switch st.FormatType {
		case discordgo.StickerFormatTypePNG, discordgo.StickerFormatTypeAPNG:
			// An APNG is served as a PNG whose frames stay in it: animated where it is shown.
			ext, mt = "png", "image/png"
		case discordgo.StickerFormatTypeGIF:
			ext, mt = "gif", "image/gif"
		case discordgo.StickerFormatTypeLottie:
			lines = append(lines, stickerLine)
			continue
		default:
			other = true
			continue
		}
		if _, err := strconv.ParseUint(st.ID, 10, 64); err != nil {
			other = true // not a snowflake: nothing to put in an address
			continue
		}
		u := "https://" + stickerHost + "/stickers/" + st.ID + "." + ext
		atts = append(atts, bridge.Attachment{Kind: bridge.MediaSticker, MIME: mt, Name: "sticker." + ext, MaxFetch: maxSticker, Fetch: a.fetcher(u)})
	}
	return atts, lines, other
}

// fetcher downloads an attachment's CDN address into memory, reading at most limit bytes.
func (a *Adapter) fetcher(u string) func(ctx context.Context, limit int64) ([]byte, error) {
	return func(ctx context.Context, limit int64) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("discord: download: %w", err)
		}
		resp, err := a.s.Client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the address is the file's: not for a log
			}
			return nil, fmt.Errorf("discord: download: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("discord: download: status %d", resp.StatusCode)
		}
		if resp.ContentLength > limit {
			return nil, fmt.Errorf("discord: %w: %d bytes", bridge.ErrTooBig, resp.ContentLength)
		}
		var buf bytes.Buffer
		if resp.ContentLength > 0 {
			buf.Grow(int(resp.ContentLength))
		}
		n, err := io.Copy(&buf, io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, fmt.Errorf("discord: download: %w", err)
		}
		if n > limit {
			return nil, fmt.Errorf("discord: %w", bridge.ErrTooBig)
		}
		return buf.Bytes(), nil
	}
}

// MaxUpload implements bridge.MediaSender.
func (a *Adapter) MaxUpload(bridge.MediaKind) int64 { return maxFile }

// SendMedia implements bridge.MediaSender: the file goes with the relay's pseudonym and caption in
// one message; a caption too long for one message follows in more.
func (a *Adapter) SendMedia(ctx context.Context, to bridge.Addr, md bridge.Media, m bridge.Message) ([]bridge.MessageID, error) {
	if len(md.Data) == 0 {
		return nil, fmt.Errorf("discord: empty file: %w", bridge.ErrRejected)
	}
	var rest []bridge.Message
	head := m
	if textLen(render(m)) > maxContent {
		lim := a.Limits()
		budget := lim.MaxText - lim.Overhead - lim.Len(m.From+": ")
		texts := bridge.Split(m.Text, budget, lim.Len)
		for i, t := range texts {
			rest = append(rest, bridge.Message{Kind: m.Kind, From: m.From, Text: t, Part: i + 1, Parts: len(texts)})
		}
		head.Text = ""
	}
	file := &discordgo.File{Name: md.Name, ContentType: md.MIME, Reader: bytes.NewReader(md.Data)}
	id, err := a.send(ctx, to, render(head), []*discordgo.File{file})
	var ids []bridge.MessageID
	if id != "" {
		ids = append(ids, id)
	}
	if err != nil {
		return ids, tooBig(err)
	}
	for _, r := range rest {
		id, err := a.send(ctx, to, render(r), nil)
		if id != "" {
			ids = append(ids, id)
		}
		if err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// tooBig marks Discord's 413 (code 40005, "Request entity too large") as bridge.ErrTooBig.
func tooBig(err error) error {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusRequestEntityTooLarge {
		return fmt.Errorf("%w: %w", bridge.ErrTooBig, err)
	}
	return err
}
