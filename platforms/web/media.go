package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/kumo-chat/kumo/bridge"
)

// Media limits of the web page. Files come in by POST /media (the WebSocket's frames stay small)
// and go out from memory at /media/<id>, an unguessable address made for one recipient, which dies
// with the message: when the room ends, when the wipe removes it, or when the visitor's page is gone.
const (
	// MaxUpload is the largest file a visitor may send (kumo's rooms.max_media_bytes still applies).
	MaxUpload = 20 << 20
	// uploadMemory bounds the uploads held at once before the bridge takes them.
	uploadMemory = 4 * MaxUpload
	// unclaimed is how long an upload waits for the bridge before it is dropped (a visitor in no
	// room: the bridge never fetches it).
	unclaimed = time.Minute
	// defaultBlobMemory bounds the files held for pages to fetch; past it the oldest go first.
	defaultBlobMemory = 256 << 20
)

var _ bridge.MediaSender = (*Adapter)(nil)

// blob is a file one visitor may fetch.
type blob struct {
	id      string
	session string
	seq     uint64
	data    []byte
	mime    string
	name    string
	inline  bool
}

// blobs holds what pages may fetch, oldest first, within a byte budget.
type blobs struct {
	mu     sync.Mutex
	byID   map[string]*blob
	order  []*blob
	bytes  int64
	budget int64
}

func newBlobs(budget int64) *blobs { return &blobs{byID: map[string]*blob{}, budget: budget} }

func (bs *blobs) add(b *blob) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.byID[b.id] = b
	bs.order = append(bs.order, b)
	bs.bytes += int64(len(b.data))
	for bs.bytes > bs.budget && len(bs.order) > 1 {
		bs.dropLocked(bs.order[0])
	}
}

func (bs *blobs) get(id string) *blob {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.byID[id]
}

func (bs *blobs) dropLocked(b *blob) {
	if bs.byID[b.id] != b {
		return
	}
	delete(bs.byID, b.id)
	bs.bytes -= int64(len(b.data))
	for i, o := range bs.order {
		if o == b {
			bs.order = append(bs.order[:i], bs.order[i+1:]...)
			break
		}
	}
}

// drop frees the session's blobs that match (all of them when match is nil).
func (bs *blobs) drop(session string, match func(*blob) bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for _, b := range append([]*blob(nil), bs.order...) {
		if b.session == session && (match == nil || match(b)) {
			bs.dropLocked(b)
		}
	}
}

// held is the bytes held for pages (tests, benchmarks).
func (bs *blobs) held() int64 {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.bytes
}

// inlineTypes are the images the page shows in place; everything else is offered as a download,
// never rendered by the browser (an HTML or SVG file could run script under the page's origin).
var inlineTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/webp": true, "image/gif": true}

// MaxUpload implements bridge.MediaSender: the page takes whatever kumo relays.
func (p *Adapter) MaxUpload(bridge.MediaKind) int64 { return 0 }

// SendMedia implements bridge.MediaSender: the file is kept in memory for the recipient's page,
// which shows an image in place and offers anything else for download.
func (p *Adapter) SendMedia(_ context.Context, to bridge.Addr, md bridge.Media, m bridge.Message) ([]bridge.MessageID, error) {
	if to.Platform != Name {
		return nil, fmt.Errorf("web: address of platform %q: %w", to.Platform, bridge.ErrRejected)
	}
	p.mu.Lock()
	s := p.sessions[to.User]
	p.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("web: visitor's page is closed: %w", bridge.ErrRecipientGone)
	}
	id, err := randomID(24)
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(md.MIME)
	b := &blob{id: id, session: s.id, data: md.Data, mime: mt, name: md.Name, inline: inlineTypes[mt]}
	ev := toEvent(m, nil, false)
	ev.Media = &mediaJSON{URL: "/media/" + id, Kind: string(md.Kind), Name: md.Name, Size: len(md.Data), Inline: b.inline}
	// The blob exists before the page hears of it, and knows its message for the wipe.
	p.blobs.add(b)
	seq, err := s.enqueue(ev)
	if err != nil {
		p.blobs.drop(s.id, func(o *blob) bool { return o == b })
		return nil, err
	}
	p.blobs.mu.Lock()
	b.seq = seq
	p.blobs.mu.Unlock()
	return []bridge.MessageID{bridge.MessageID(strconv.FormatUint(seq, 10))}, nil
}

// mediaJSON is a file in a "msg" event.
type mediaJSON struct {
	URL    string `json:"url"`
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Size   int    `json:"size"`
	Inline bool   `json:"inline,omitempty"` // an image the page shows in place
}

// serveMedia answers GET /media/{id}: the file, from memory, once per fetch.
func (p *Adapter) serveMedia(w http.ResponseWriter, r *http.Request) {
	b := p.blobs.get(r.PathValue("id"))
	if b == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	if b.inline {
		h.Set("Content-Type", b.mime)
		h.Set("Content-Disposition", "inline")
	} else {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": b.name}))
	}
	h.Set("Content-Length", strconv.Itoa(len(b.data)))
	_, _ = w.Write(b.data)
}

// upload is one file a visitor sent, held until the bridge fetches it.
type upload struct {
	data    []byte
	once    sync.Once
	release func()
}

func (u *upload) fetch(_ context.Context, limit int64) ([]byte, error) {
	defer u.once.Do(u.release)
	if int64(len(u.data)) > limit {
		return nil, fmt.Errorf("web: %w: %d bytes", bridge.ErrTooBig, len(u.data))
	}
	return u.data, nil
}

// serveUpload answers POST /media: the body is one file; X-Kumo-Token is the session's secret
// (the page's only proof of who it is, never in a URL), X-Kumo-Name the file's name and
// X-Kumo-Caption its caption, both percent-encoded.
func (p *Adapter) serveUpload(w http.ResponseWriter, r *http.Request) {
	if !p.checkOrigin(r) {
		http.Error(w, "This page may not send files here.", http.StatusForbidden)
		return
	}
	h, ctx, _, ok := p.acquire()
	if !ok {
		http.Error(w, "kumo is not running.", http.StatusServiceUnavailable)
		return
	}
	defer p.conns.Done()
	s := p.resume(r.Header.Get("X-Kumo-Token"))
	if s == nil {
		http.Error(w, "Your session has ended: reload the page.", http.StatusForbidden)
		return
	}
	size := r.ContentLength
	switch {
	case size <= 0:
		http.Error(w, "The file is empty.", http.StatusBadRequest)
		return
	case size > MaxUpload:
		http.Error(w, fmt.Sprintf("That file is too big: the limit is %d MB. It was not sent.", MaxUpload>>20), http.StatusRequestEntityTooLarge)
		return
	}
	if !p.uploadMem.TryAcquire(size) {
		http.Error(w, "kumo is busy with other files: try again in a moment.", http.StatusServiceUnavailable)
		return
	}
	u := &upload{release: func() { p.uploadMem.Release(size) }}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, size))
	if err != nil {
		u.once.Do(u.release)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "The file is larger than it said.", http.StatusRequestEntityTooLarge)
		}
		return
	}
	u.data = data
	time.AfterFunc(unclaimed, func() { u.once.Do(u.release) })
	name, _ := url.PathUnescape(r.Header.Get("X-Kumo-Name"))
	caption, _ := url.PathUnescape(r.Header.Get("X-Kumo-Caption"))
	caption = strings.TrimSpace(caption)
	if n := bridge.UTF16Len(caption); n > MaxText {
		u.once.Do(u.release)
		http.Error(w, fmt.Sprintf("The caption is %d characters long; the limit is %d. Nothing was sent.", n, MaxText), http.StatusBadRequest)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	h.HandleInbound(ctx, bridge.Inbound{
		From: s.addr(), Text: caption, ID: ownID(r.Header.Get("X-Kumo-Id")),
		Origin: originOf(clientIP(r, p.opts.trusted)),
		Attachments: []bridge.Attachment{{
			Kind: kindOf(mt), MIME: mt, Name: name, Size: int64(len(data)), MaxFetch: MaxUpload, Fetch: u.fetch,
		}},
	})
	w.WriteHeader(http.StatusNoContent)
}

// kindOf is how a file the page sent is relayed: pictures as photos, sound and video as such.
func kindOf(mt string) bridge.MediaKind {
	switch {
	case inlineTypes[mt] && mt != "image/gif":
		return bridge.MediaPhoto
	case mt == "image/gif":
		return bridge.MediaAnimation
	case strings.HasPrefix(mt, "audio/"):
		return bridge.MediaAudio
	case strings.HasPrefix(mt, "video/"):
		return bridge.MediaVideo
	}
	return bridge.MediaFile
}

// newUploadBudget is the semaphore of upload bytes held at once.
func newUploadBudget() *semaphore.Weighted { return semaphore.NewWeighted(uploadMemory) }
