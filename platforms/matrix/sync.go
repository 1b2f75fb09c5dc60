package matrix

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"log/slog"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
)

// syncer wraps mautrix's DefaultSyncer to drop history before handing a sync response on.
//
// It deliberately does not implement mautrix.DispatchableSyncer: then cryptohelper does not decrypt
// events in the sync loop (where a missing key would make it wait on a goroutine of its own and
// deliver out of order); the adapter decrypts on each room's ordered worker instead.
type syncer struct {
	d *mautrix.DefaultSyncer
	a *Adapter
}

var _ mautrix.ExtensibleSyncer = (*syncer)(nil)

func newSyncer(a *Adapter) *syncer {
	d := mautrix.NewDefaultSyncer()
	d.FilterJSON = &mautrix.Filter{
		Presence:    &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}},
		AccountData: &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}},
		Room: &mautrix.RoomFilter{
			Timeline:    &mautrix.FilterPart{Limit: 50},
			Ephemeral:   &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}},
			AccountData: &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}},
		},
	}
	return &syncer{d: d, a: a}
}

func (s *syncer) OnSync(cb mautrix.SyncHandler)                     { s.d.OnSync(cb) }
func (s *syncer) OnEvent(cb mautrix.EventHandler)                   { s.d.OnEvent(cb) }
func (s *syncer) OnEventType(t event.Type, cb mautrix.EventHandler) { s.d.OnEventType(t, cb) }
func (s *syncer) GetFilterJSON(u id.UserID) *mautrix.Filter         { return s.d.GetFilterJSON(u) }

// OnFailedSync retries after a short pause: Run's ctx is what stops the loop.
func (s *syncer) OnFailedSync(res *mautrix.RespSync, err error) (time.Duration, error) {
	if _, ferr := s.d.OnFailedSync(res, err); ferr != nil {
		return 0, ferr // the token is no longer valid
	}
	s.a.log.Warn("matrix sync failed, retrying", "err", err)
	return 3 * time.Second, nil
}

// ProcessResponse removes history before dispatching:
//   - the first sync after start is all history: its rooms' state is kept (the state store needs it:
//     encryption, members), their timeline messages are dropped; pending invites are kept.
//   - a room we joined in this sync arrives with its recent timeline: messages from before our join
//     that are also older than our start are history and dropped; anything after our join is new.
func (s *syncer) ProcessResponse(ctx context.Context, res *mautrix.RespSync, since string) error {
	me := s.a.cli.UserID
	for _, r := range res.Rooms.Join {
		if since == "" {
			for _, evt := range r.Timeline.Events {
				if evt.StateKey != nil {
					r.State.Events = append(r.State.Events, evt)
				}
			}
			r.Timeline.Events = nil
			continue
		}
		join := -1
		for i, evt := range r.Timeline.Events {
			if evt.Type == event.StateMember && evt.GetStateKey() == me.String() && evt.Content.Raw["membership"] == "join" {
				join = i
			}
		}
		if join < 0 {
			continue
		}
		kept := r.Timeline.Events[:0]
		for i, evt := range r.Timeline.Events {
			if i < join && evt.StateKey == nil && time.UnixMilli(evt.Timestamp).Before(s.a.start) {
				continue
			}
			kept = append(kept, evt)
		}
		r.Timeline.Events = kept
	}
	if since == "" {
		res.Rooms.Leave = nil
	}
	return s.d.ProcessResponse(ctx, res, since)
}

// uploadImage uploads img (encrypted when the room is, as clients expect) and returns its m.image.
func (a *Adapter) uploadImage(ctx context.Context, roomID id.RoomID, img bridge.Image) (*event.MessageEventContent, error) {
	content := &event.MessageEventContent{
		MsgType:  event.MsgImage,
		Body:     img.Name,
		FileName: img.Name,
		Info:     &event.FileInfo{MimeType: "image/png", Size: len(img.PNG)},
		Mentions: &event.Mentions{},
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(img.PNG)); err == nil {
		content.Info.Width, content.Info.Height = cfg.Width, cfg.Height
	}
	encrypted, err := a.cli.StateStore.IsEncrypted(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("matrix: is the room encrypted: %w", err)
	}
	data, mime := img.PNG, "image/png"
	var file *attachment.EncryptedFile
	if encrypted {
		file = attachment.NewEncryptedFile()
		data, mime = bytes.Clone(img.PNG), "application/octet-stream" // the caller's PNG stays intact
		file.EncryptInPlace(data)
	}
	if err := a.limiter.Wait(ctx); err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	up, err := a.cli.UploadBytes(ctx, data, mime)
	if err != nil {
		return nil, classify(fmt.Errorf("upload: %w", err))
	}
	if file != nil {
		content.File = &event.EncryptedFileInfo{EncryptedFile: *file, URL: up.ContentURI.CUString()}
	} else {
		content.URL = up.ContentURI.CUString()
	}
	return content, nil
}

// imageKey identifies one SendImage call, to recognise the bridge's retry of it.
func imageKey(roomID id.RoomID, img bridge.Image, m bridge.Message) string {
	h := sha256.New()
	h.Write([]byte(roomID))
	h.Write([]byte{0})
	h.Write(img.PNG)
	h.Write([]byte{0})
	h.Write([]byte(m.String()))
	return hex.EncodeToString(h.Sum(nil))
}

// zerologTo forwards mautrix's warnings and errors to slog: only the message, the error and ids,
// never request bodies (they would hold message text).
func zerologTo(log *slog.Logger) zerolog.Logger {
	return zerolog.New(slogWriter{log}).Level(zerolog.WarnLevel)
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		return len(p), nil
	}
	level := slog.LevelWarn
	if l, _ := rec["level"].(string); l == "error" || l == "fatal" || l == "panic" {
		level = slog.LevelError
	}
	msg, _ := rec["message"].(string)
	attrs := []any{"source", "mautrix"}
	for _, k := range []string{"error", "component", "room_id", "event_id", "session_id", "user_id", "device_id"} {
		if v, ok := rec[k]; ok {
			attrs = append(attrs, k, v)
		}
	}
	w.log.Log(context.Background(), level, "mautrix: "+msg, attrs...)
	return len(p), nil
}
