package telegramtest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Bot API file limits: bots download up to 20 MB (getFile), upload photos up to 10 MB and other
// files up to 50 MB (https://core.telegram.org/bots/api#sending-files).
const (
	MaxDownload    = 20 << 20
	MaxPhotoUpload = 10 << 20
	MaxUpload      = 50 << 20
	// maxRequest is a whole request's limit: a 50 MB file and its form fields.
	maxRequest = MaxUpload + 64<<10
)

// mediaField is each send method's file parameter, which is also the message's field for it.
var mediaField = map[string]string{
	"sendPhoto": "photo", "sendDocument": "document", "sendVoice": "voice", "sendAudio": "audio",
	"sendVideo": "video", "sendAnimation": "animation", "sendVideoNote": "video_note", "sendSticker": "sticker",
}

type storedFile struct {
	data []byte
	path string
}

// storedMedia is a media message a user sent, for copyMessage.
type storedMedia struct {
	kind   string
	fileID string
}

// injectMediaLocked adds the kinds server.go's Inject does not know to msg.
func (s *Server) injectMediaLocked(msg map[string]any, in Incoming, fid string) bool {
	switch in.Media {
	case "audio":
		msg["audio"] = map[string]any{"file_id": fid, "file_unique_id": fid, "duration": 3}
	case "animation":
		// Telegram sends an animation with a document field too, for older clients.
		a := map[string]any{"file_id": fid, "file_unique_id": fid, "width": 1, "height": 1, "duration": 1}
		msg["animation"], msg["document"] = a, a
	case "video_note":
		msg["video_note"] = map[string]any{"file_id": fid, "file_unique_id": fid, "length": 240, "duration": 1}
	default:
		return false
	}
	return true
}

// storeInjectedLocked keeps an injected medium's bytes for getFile and declares them in msg.
func (s *Server) storeInjectedLocked(msg map[string]any, in Incoming, fid string, chatID int64, msgID int) {
	s.messages[[2]int64{chatID, int64(msgID)}] = storedMedia{kind: in.Media, fileID: fid}
	if st, ok := msg["sticker"].(map[string]any); ok && in.Thumbnail != nil {
		tid := fid + "-thumb"
		s.files[tid] = &storedFile{data: in.Thumbnail, path: "thumbnails/" + tid + ".webp"}
		st["is_animated"] = true
		st["thumbnail"] = map[string]any{"file_id": tid, "file_unique_id": tid, "width": 128, "height": 128, "file_size": len(in.Thumbnail)}
	}
	if in.File == nil {
		return
	}
	s.files[fid] = &storedFile{data: in.File, path: in.Media + "s/file_" + strings.TrimPrefix(fid, "in-")}
	var obj map[string]any
	if ps, ok := msg["photo"].([]map[string]any); ok {
		obj = ps[len(ps)-1]
	} else {
		obj, _ = msg[in.Media].(map[string]any)
	}
	if obj == nil {
		return
	}
	obj["file_size"] = len(in.File)
	if in.MIME != "" {
		obj["mime_type"] = in.MIME
	}
	if in.FileName != "" {
		obj["file_name"] = in.FileName
	}
}

// File is the bytes stored under a file_id: what a user sent, or what the bot uploaded.
func (s *Server) File(fileID string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[fileID]
	if f == nil {
		return nil, false
	}
	return f.data, true
}

func (s *Server) getFile(f form) (any, *apiError) {
	id := f.get("file_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	file := s.files[id]
	if file == nil {
		return nil, badRequest("invalid file_id")
	}
	if len(file.data) > MaxDownload {
		return nil, badRequest("file is too big")
	}
	return map[string]any{"file_id": id, "file_unique_id": id, "file_size": len(file.data), "file_path": file.path}, nil
}

// serveFile answers GET /file/bot<token>/<file_path>, as api.telegram.org does.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/file/bot")
	token, p, ok := strings.Cut(rest, "/")
	if !ok || token != s.token {
		http.Error(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	var data []byte
	for _, f := range s.files {
		if f.path == p && len(f.data) <= MaxDownload {
			data = f.data
		}
	}
	s.stats.Calls["file"]++
	s.mu.Unlock()
	if data == nil {
		http.Error(w, `{"ok":false,"error_code":404,"description":"Not Found"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// sendFile is sendDocument, sendVoice, sendAudio, sendVideo, sendAnimation, sendVideoNote and
// sendSticker: a file uploaded in the multipart body or resent by file_id, with a caption (except
// for video notes and stickers, which have none).
func (s *Server) sendFile(method string, f form) (any, *apiError) {
	field := mediaField[method]
	sent := Sent{Method: method, ParseMode: f.get("parse_mode"), Protected: f.get("protect_content") == "true"}
	if method != "sendSticker" && method != "sendVideoNote" {
		raw := f.get("caption")
		text, ents, e := checkText(raw, sent.ParseMode)
		if e != nil {
			return nil, e
		}
		if utf16Len(text) > MaxCaption {
			return nil, badRequest("message caption is too long")
		}
		sent.Raw, sent.Text, sent.Entities = raw, text, ents
	}
	if fh := f.files[field]; fh != nil {
		file, err := fh.Open()
		if err != nil {
			return nil, badRequest("failed to read the file")
		}
		data, err := io.ReadAll(file)
		_ = file.Close()
		if err != nil || len(data) == 0 {
			return nil, badRequest("file must be non-empty")
		}
		if len(data) > MaxUpload {
			return nil, &apiError{code: 413, desc: "Request Entity Too Large"}
		}
		sent.FileData, sent.FileName = data, fh.Filename
		if method == "sendSticker" && !isStickerFile(data) {
			return nil, badRequest("STICKER_INVALID")
		}
	} else if id := f.get(field); id != "" && !strings.HasPrefix(id, "attach://") {
		s.mu.Lock()
		_, known := s.files[id]
		s.mu.Unlock()
		if !known {
			return nil, badRequest("wrong file identifier/HTTP URL specified")
		}
		sent.FileID = id
	} else {
		return nil, badRequest("there is no %s in the request", field)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.targetLocked(f)
	if e != nil {
		return nil, e
	}
	if e := s.admitLocked(cs); e != nil {
		return nil, e
	}
	if sent.FileID == "" {
		s.nextFile++
		sent.FileID = fmt.Sprintf("%s-%d", field, s.nextFile)
		s.files[sent.FileID] = &storedFile{data: sent.FileData, path: field + "s/" + sent.FileID}
	}
	return s.recordLocked(cs, sent), nil
}

// copyMessage resends a message without a link to the original; a new caption replaces the old.
func (s *Server) copyMessage(f form) (any, *apiError) {
	from, _ := strconv.ParseInt(f.get("from_chat_id"), 10, 64)
	id, _ := strconv.ParseInt(f.get("message_id"), 10, 64)
	raw := f.get("caption")
	text, ents, e := checkText(raw, f.get("parse_mode"))
	if e != nil {
		return nil, e
	}
	if utf16Len(text) > MaxCaption {
		return nil, badRequest("message caption is too long")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	orig, ok := s.messages[[2]int64{from, id}]
	if !ok {
		return nil, badRequest("message to copy not found")
	}
	cs, e := s.targetLocked(f)
	if e != nil {
		return nil, e
	}
	if e := s.admitLocked(cs); e != nil {
		return nil, e
	}
	sent := Sent{Method: "copyMessage", Raw: raw, ParseMode: f.get("parse_mode"), FileID: orig.fileID, Protected: f.get("protect_content") == "true"}
	if orig.kind != "sticker" && orig.kind != "video_note" {
		sent.Text, sent.Entities = text, ents
	}
	if file := s.files[orig.fileID]; file != nil {
		sent.FileData = file.data
	}
	return s.recordLocked(cs, sent), nil
}

// isStickerFile is what sendSticker accepts uploaded: a WEBP, a TGS (gzipped Lottie) or a WEBM.
func isStickerFile(b []byte) bool {
	return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" ||
		len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b ||
		len(b) >= 4 && string(b[:4]) == "\x1a\x45\xdf\xa3"
}
