package telegram

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

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/kumo-chat/kumo/bridge"
)

// Bot API file limits (https://core.telegram.org/bots/api#sending-files): bots download up to
// 20 MB with getFile and upload photos up to 10 MB, other files up to 50 MB.
const (
	maxDownload    = 20 << 20
	maxPhotoUpload = 10 << 20
	maxUpload      = 50 << 20
)

var (
	_ bridge.MediaSender = (*Adapter)(nil)
	_ bridge.MediaCopier = (*Adapter)(nil)
)

// attachments turns a message's media into the bridge's attachments. Telegram's own recompressed
// photos, voice notes and stickers carry no metadata of the sender's device, so they may be copied
// to other Telegram members without their bytes (Native); files, audio and videos keep whatever
// their maker wrote, so they always go through the bridge's filter.
func (a *Adapter) attachments(msg *models.Message) []bridge.Attachment {
	native := strconv.FormatInt(msg.Chat.ID, 10) + ":" + strconv.Itoa(msg.ID) + ":"
	att := func(kind bridge.MediaKind, fileID, mimeType, name string, size int64, copyable bool) []bridge.Attachment {
		at := bridge.Attachment{Kind: kind, MIME: mimeType, Name: name, Size: size, MaxFetch: maxDownload, Fetch: a.fetcher(fileID)}
		if copyable {
			at.Native = native + string(kind)
		}
		return []bridge.Attachment{at}
	}
	switch {
	case len(msg.Photo) > 0:
		p := msg.Photo[len(msg.Photo)-1] // the largest size
		return att(bridge.MediaPhoto, p.FileID, "image/jpeg", "photo.jpg", int64(p.FileSize), true)
	case msg.Voice != nil:
		return att(bridge.MediaVoice, msg.Voice.FileID, orDefault(msg.Voice.MimeType, "audio/ogg"), "voice.ogg", msg.Voice.FileSize, true)
	case msg.Sticker != nil:
		st := msg.Sticker
		if (st.IsAnimated || st.IsVideo) && st.Thumbnail != nil {
			// Only Telegram plays animated (Lottie) and video stickers: other platforms get their
			// still preview, Telegram members the sticker itself (copied).
			return att(bridge.MediaSticker, st.Thumbnail.FileID, "image/webp", "sticker.webp", int64(st.Thumbnail.FileSize), true)
		}
		mt, name := "image/webp", "sticker.webp"
		switch {
		case st.IsAnimated:
			mt, name = "application/x-tgsticker", "sticker.tgs"
		case st.IsVideo:
			mt, name = "video/webm", "sticker.webm"
		}
		return att(bridge.MediaSticker, st.FileID, mt, name, int64(st.FileSize), true)
	case msg.Animation != nil: // before Document: Telegram sends both for an animation
		return att(bridge.MediaAnimation, msg.Animation.FileID, msg.Animation.MimeType, msg.Animation.FileName, msg.Animation.FileSize, false)
	case msg.VideoNote != nil:
		return att(bridge.MediaVideoNote, msg.VideoNote.FileID, "video/mp4", "video.mp4", int64(msg.VideoNote.FileSize), false)
	case msg.Video != nil:
		return att(bridge.MediaVideo, msg.Video.FileID, msg.Video.MimeType, msg.Video.FileName, msg.Video.FileSize, false)
	case msg.Audio != nil:
		return att(bridge.MediaAudio, msg.Audio.FileID, msg.Audio.MimeType, msg.Audio.FileName, msg.Audio.FileSize, false)
	case msg.Document != nil:
		return att(bridge.MediaFile, msg.Document.FileID, msg.Document.MimeType, msg.Document.FileName, msg.Document.FileSize, false)
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// fetcher downloads a file into memory: getFile, then its download URL, reading at most limit bytes.
func (a *Adapter) fetcher(fileID string) func(ctx context.Context, limit int64) ([]byte, error) {
	return func(ctx context.Context, limit int64) ([]byte, error) {
		f, err := a.bot.GetFile(ctx, &bot.GetFileParams{FileID: fileID})
		if err != nil {
			return nil, classify(err)
		}
		if f.FileSize > limit {
			return nil, fmt.Errorf("telegram: %w: %d bytes", bridge.ErrTooBig, f.FileSize)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.bot.FileDownloadLink(f), nil)
		if err != nil {
			return nil, fmt.Errorf("telegram: download: %w", err)
		}
		resp, err := a.http.Do(req)
		if err != nil {
			// The URL holds the bot token: never let it reach a log.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("telegram: download: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("telegram: download: status %d", resp.StatusCode)
		}
		if resp.ContentLength > limit {
			return nil, fmt.Errorf("telegram: %w: %d bytes", bridge.ErrTooBig, resp.ContentLength)
		}
		buf := bytes.NewBuffer(make([]byte, 0, max(f.FileSize, resp.ContentLength, 0)))
		n, err := io.Copy(buf, io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, fmt.Errorf("telegram: download: %w", err)
		}
		if n > limit {
			return nil, fmt.Errorf("telegram: %w", bridge.ErrTooBig)
		}
		return buf.Bytes(), nil
	}
}

// MaxUpload implements bridge.MediaSender.
func (a *Adapter) MaxUpload(kind bridge.MediaKind) int64 {
	if kind == bridge.MediaPhoto {
		return maxPhotoUpload
	}
	return maxUpload
}

// noCaption is the kinds Telegram shows without a caption: their sender's name goes before them.
func noCaption(k bridge.MediaKind) bool {
	return k == bridge.MediaSticker || k == bridge.MediaVideoNote
}

// captionFor renders the relay's pseudonym and caption for a medium; what does not fit Telegram's
// caption goes in messages of its own after it (rest).
func captionFor(kind bridge.MediaKind, m bridge.Message) (caption string, rest []bridge.Message) {
	if noCaption(kind) {
		return "", nil
	}
	c := render(m)
	if visibleLen(c) <= maxCaption {
		return c, nil
	}
	budget := maxText - overhead - bridge.UTF16Len(m.From+": ")
	texts := bridge.Split(m.Text, budget, bridge.UTF16Len)
	for i, t := range texts {
		rest = append(rest, bridge.Message{Kind: m.Kind, From: m.From, Text: t, Part: i + 1, Parts: len(texts)})
	}
	return render(bridge.Message{Kind: m.Kind, From: m.From}), rest
}

// SendMedia implements bridge.MediaSender, with the Bot API method for the kind. Everything is
// sent with protect_content, so members cannot forward or save what the room shows.
func (a *Adapter) SendMedia(ctx context.Context, to bridge.Addr, md bridge.Media, m bridge.Message) ([]bridge.MessageID, error) {
	if len(md.Data) == 0 {
		return nil, fmt.Errorf("telegram: %w: empty file", bridge.ErrRejected)
	}
	if md.Kind == bridge.MediaSticker && md.MIME != "image/webp" && md.MIME != "application/x-tgsticker" && md.MIME != "video/webm" {
		// sendSticker takes only WEBP, TGS and WEBM: another platform's sticker (a Matrix PNG) is
		// shown as the picture it is.
		md.Kind = bridge.MediaPhoto
	}
	file := func() models.InputFile {
		return &models.InputFileUpload{Filename: md.Name, Data: bytes.NewReader(md.Data)}
	}
	return a.sendMedia(ctx, to, md.Kind, m, func(chatID int64, caption string) (*models.Message, error) {
		pm := models.ParseModeHTML
		switch md.Kind {
		case bridge.MediaPhoto:
			return a.bot.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: chatID, Photo: file(), Caption: caption, ParseMode: pm, ProtectContent: true})
		case bridge.MediaVoice:
			return a.bot.SendVoice(ctx, &bot.SendVoiceParams{ChatID: chatID, Voice: file(), Caption: caption, ParseMode: pm, ProtectContent: true})
		case bridge.MediaAudio:
			return a.bot.SendAudio(ctx, &bot.SendAudioParams{ChatID: chatID, Audio: file(), Caption: caption, ParseMode: pm, ProtectContent: true})
		case bridge.MediaVideo:
			return a.bot.SendVideo(ctx, &bot.SendVideoParams{ChatID: chatID, Video: file(), Caption: caption, ParseMode: pm, ProtectContent: true})
		case bridge.MediaAnimation:
			return a.bot.SendAnimation(ctx, &bot.SendAnimationParams{ChatID: chatID, Animation: file(), Caption: caption, ParseMode: pm, ProtectContent: true})
		case bridge.MediaVideoNote:
			return a.bot.SendVideoNote(ctx, &bot.SendVideoNoteParams{ChatID: chatID, VideoNote: file(), ProtectContent: true})
		case bridge.MediaSticker:
			return a.bot.SendSticker(ctx, &bot.SendStickerParams{ChatID: chatID, Sticker: file(), ProtectContent: true})
		}
		return a.bot.SendDocument(ctx, &bot.SendDocumentParams{ChatID: chatID, Document: file(), Caption: caption, ParseMode: pm, ProtectContent: true})
	})
}

// CopyMedia implements bridge.MediaCopier with copyMessage: the file never leaves Telegram, and
// the copy has no link to the original or its sender. native is "<chat id>:<message id>:<kind>".
func (a *Adapter) CopyMedia(ctx context.Context, to bridge.Addr, native string, m bridge.Message) ([]bridge.MessageID, error) {
	parts := strings.SplitN(native, ":", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("telegram: %w: not a message handle", bridge.ErrRejected)
	}
	fromChat, err1 := strconv.ParseInt(parts[0], 10, 64)
	id, err2 := strconv.Atoi(parts[1])
	kind := bridge.MediaKind(parts[2])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("telegram: %w: not a message handle", bridge.ErrRejected)
	}
	return a.sendMedia(ctx, to, kind, m, func(chatID int64, caption string) (*models.Message, error) {
		// A copy without a caption would keep the original's, which never stood under a pseudonym.
		res, err := a.bot.CopyMessage(ctx, &bot.CopyMessageParams{ChatID: chatID, FromChatID: fromChat, MessageID: id,
			Caption: caption, ParseMode: models.ParseModeHTML, ProtectContent: true})
		if err != nil {
			return nil, err
		}
		return &models.Message{ID: res.ID}, nil
	})
}

// sendMedia sends what goes with a medium around send's own call: the sender's name before a kind
// without a caption, the part of a caption that did not fit after it.
func (a *Adapter) sendMedia(ctx context.Context, to bridge.Addr, kind bridge.MediaKind, m bridge.Message, send func(chatID int64, caption string) (*models.Message, error)) ([]bridge.MessageID, error) {
	chatID, err := chatOf(to)
	if err != nil {
		return nil, err
	}
	var ids []bridge.MessageID
	if noCaption(kind) {
		id, err := a.SendText(ctx, to, m)
		if id != "" {
			ids = append(ids, id)
		}
		if err != nil {
			return ids, err
		}
	}
	caption, rest := captionFor(kind, m)
	var sent *models.Message
	err = a.send(ctx, chatID, func() (err error) {
		sent, err = send(chatID, caption)
		return err
	})
	if id := idOf(sent); id != "" {
		ids = append(ids, id)
	}
	if err != nil {
		return ids, mediaError(err)
	}
	for _, r := range rest {
		id, err := a.SendText(ctx, to, r)
		if id != "" {
			ids = append(ids, id)
		}
		if err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// mediaError marks Telegram's answers to a file over its limits: "Bad Request: file is too big"
// and the 413 "Request Entity Too Large".
func mediaError(err error) error {
	s := err.Error()
	if strings.Contains(s, "file is too big") || strings.Contains(s, "Request Entity Too Large") {
		if !errors.Is(err, bridge.ErrRejected) {
			err = fmt.Errorf("%w: %w", bridge.ErrRejected, err)
		}
		return fmt.Errorf("%w: %w", bridge.ErrTooBig, err)
	}
	return err
}
