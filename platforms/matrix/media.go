package matrix

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
)

var _ bridge.MediaSender = (*Adapter)(nil)

// mediaLimit is the homeserver's m.upload.size, read once (GetMediaConfig); 0 until known or when
// the homeserver gives none.
type mediaLimit struct {
	size    atomic.Int64
	checked atomic.Int64 // Unix seconds of the last attempt
}

// attachmentsOf is the media of a message event: m.image, m.file, m.audio (a voice note when it
// carries MSC3245's voice marker), m.video and stickers. Encrypted files are decrypted when the
// bridge fetches them; the homeserver keeps only ciphertext.
func (a *Adapter) attachmentsOf(evtType event.Type, msg *event.MessageEventContent) (atts []bridge.Attachment, caption string) {
	var kind bridge.MediaKind
	switch {
	case evtType == event.EventSticker:
		kind = bridge.MediaSticker
	case msg.MsgType == event.MsgImage:
		kind = bridge.MediaPhoto
	case msg.MsgType == event.MsgAudio && msg.MSC3245Voice != nil:
		kind = bridge.MediaVoice
	case msg.MsgType == event.MsgAudio:
		kind = bridge.MediaAudio
	case msg.MsgType == event.MsgVideo:
		kind = bridge.MediaVideo
	case msg.MsgType == event.MsgFile:
		kind = bridge.MediaFile
	default:
		return nil, ""
	}
	name := msg.FileName
	if name == "" {
		name = msg.Body
	} else if msg.Body != msg.FileName && evtType != event.EventSticker {
		caption = msg.Body // Matrix 1.10: with a filename, the body is the caption
	}
	at := bridge.Attachment{Kind: kind, Name: name}
	if msg.Info != nil {
		at.MIME, at.Size = msg.Info.MimeType, int64(msg.Info.Size)
	}
	var (
		uri  id.ContentURIString
		file *attachment.EncryptedFile
	)
	if msg.File != nil {
		uri = msg.File.URL
		f := attachment.EncryptedFile(msg.File.EncryptedFile)
		file = &f
	} else {
		uri = msg.URL
	}
	at.Fetch = a.fetcher(uri, file)
	return []bridge.Attachment{at}, caption
}

// fetcher downloads a file from the media repository into memory, at most limit bytes, and
// decrypts it when it came encrypted.
func (a *Adapter) fetcher(uri id.ContentURIString, file *attachment.EncryptedFile) func(ctx context.Context, limit int64) ([]byte, error) {
	return func(ctx context.Context, limit int64) ([]byte, error) {
		mxc, err := uri.Parse()
		if err != nil {
			return nil, fmt.Errorf("matrix: media url: %w: %w", bridge.ErrRejected, err)
		}
		resp, err := a.cli.Download(ctx, mxc)
		if err != nil {
			return nil, fmt.Errorf("matrix: download: %w", classify(err))
		}
		defer resp.Body.Close()
		if resp.ContentLength > limit {
			return nil, fmt.Errorf("matrix: %w: %d bytes", bridge.ErrTooBig, resp.ContentLength)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, fmt.Errorf("matrix: download: %w", err)
		}
		if int64(len(data)) > limit {
			return nil, fmt.Errorf("matrix: %w", bridge.ErrTooBig)
		}
		if file != nil {
			if err := file.PrepareForDecryption(); err != nil {
				return nil, fmt.Errorf("matrix: encrypted file: %w: %w", bridge.ErrRejected, err)
			}
			if err := file.DecryptInPlace(data); err != nil {
				return nil, fmt.Errorf("matrix: decrypting a file: %w: %w", bridge.ErrRejected, err)
			}
		}
		return data, nil
	}
}

// MaxUpload implements bridge.MediaSender: the homeserver's m.upload.size, asked once (again
// after a minute when the homeserver did not answer).
func (a *Adapter) MaxUpload(bridge.MediaKind) int64 {
	if n := a.media.size.Load(); n > 0 {
		return n
	}
	now := time.Now().Unix()
	if last := a.media.checked.Load(); now-last < 60 || !a.media.checked.CompareAndSwap(last, now) {
		return 0
	}
	select {
	case <-a.ready:
	default:
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cfg, err := a.cli.GetMediaConfig(ctx); err == nil && cfg != nil && cfg.UploadSize > 0 {
		a.media.size.Store(cfg.UploadSize)
		return cfg.UploadSize
	}
	return 0
}

// msgTypes is the event each kind becomes.
var msgTypes = map[bridge.MediaKind]event.MessageType{
	bridge.MediaPhoto: event.MsgImage, bridge.MediaSticker: event.MsgImage, bridge.MediaVoice: event.MsgAudio,
	bridge.MediaAudio: event.MsgAudio, bridge.MediaVideo: event.MsgVideo, bridge.MediaVideoNote: event.MsgVideo,
	bridge.MediaAnimation: event.MsgVideo,
}

// SendMedia implements bridge.MediaSender: the sender's pseudonym and caption as text, then the
// file (encrypted with a fresh key when the room is: the homeserver keeps only ciphertext, and the
// key is only in the event, which the room's wipe redacts).
func (a *Adapter) SendMedia(ctx context.Context, to bridge.Addr, md bridge.Media, m bridge.Message) ([]bridge.MessageID, error) {
	roomID, err := a.target(ctx, to)
	if err != nil {
		return nil, err
	}
	mt := msgTypes[md.Kind]
	if mt == "" {
		mt = event.MsgFile
	}
	if strings.HasPrefix(md.MIME, "image/gif") {
		mt = event.MsgImage
	}
	content := &event.MessageEventContent{MsgType: mt, Body: md.Name, FileName: md.Name,
		Info: &event.FileInfo{MimeType: md.MIME, Size: len(md.Data)}, Mentions: &event.Mentions{}}
	if md.Kind == bridge.MediaVoice {
		content.MSC3245Voice = &event.MSC3245Voice{}
	}
	// The upload comes first: refused (too big, rate-limited) it leaves nothing in the chat, so
	// neither the sender's answer nor the core's retry meets a pseudonym line without its file.
	if err := a.upload(ctx, roomID, content, md.Data, md.MIME); err != nil {
		return nil, err
	}
	var ids []bridge.MessageID
	id, err := a.send(ctx, roomID, render(m))
	if id != "" {
		ids = append(ids, id)
	}
	if err != nil {
		return ids, err
	}
	id, err = a.send(ctx, roomID, content)
	if id != "" {
		ids = append(ids, id)
	}
	return ids, err
}

// upload puts data in the media repository for content, encrypted when the room is.
func (a *Adapter) upload(ctx context.Context, roomID id.RoomID, content *event.MessageEventContent, data []byte, mime string) error {
	encrypted, err := a.cli.StateStore.IsEncrypted(ctx, roomID)
	if err != nil {
		return fmt.Errorf("matrix: is the room encrypted: %w", err)
	}
	var file *attachment.EncryptedFile
	if encrypted {
		file = attachment.NewEncryptedFile()
		data, mime = append([]byte(nil), data...), "application/octet-stream" // the bridge's bytes are shared
		file.EncryptInPlace(data)
	}
	if err := a.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	up, err := a.cli.UploadBytes(ctx, data, mime)
	if err != nil {
		return classify(fmt.Errorf("upload: %w", err))
	}
	if file != nil {
		content.File = &event.EncryptedFileInfo{EncryptedFile: *file, URL: up.ContentURI.CUString()}
	} else {
		content.URL = up.ContentURI.CUString()
	}
	return nil
}
