package bridge

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/kumo-chat/kumo/rooms"
)

// MediaKind is what sort of attachment a message carries; adapters pick their platform's way of
// showing each (Telegram's sendVoice for a voice note, an inline image on the web page).
type MediaKind string

// The kinds kumo relays.
const (
	MediaPhoto     MediaKind = "photo"
	MediaFile      MediaKind = "file"
	MediaVoice     MediaKind = "voice"
	MediaAudio     MediaKind = "audio"
	MediaVideo     MediaKind = "video"
	MediaAnimation MediaKind = "animation" // GIFs and their silent-MP4 forms
	MediaVideoNote MediaKind = "video_note"
	MediaSticker   MediaKind = "sticker"
)

// noun is how a notice names the kind: "sent a voice note".
func (k MediaKind) noun() string {
	switch k {
	case MediaPhoto:
		return "a photo"
	case MediaVoice:
		return "a voice note"
	case MediaAudio:
		return "an audio file"
	case MediaVideo:
		return "a video"
	case MediaAnimation:
		return "an animation"
	case MediaVideoNote:
		return "a video message"
	case MediaSticker:
		return "a sticker"
	}
	return "a file"
}

// Attachment is one photo, file, voice note... a person sent. Its bytes stay on the platform until
// the bridge fetches them, once per relay and only when some recipient needs them.
type Attachment struct {
	Kind MediaKind
	MIME string // as the platform declared it; may be empty
	// Name is the original file name. Only its extension is used: the name itself can identify the
	// sender ("IMG_JohnSmith.jpg"), so members get a neutral one ("file.pdf").
	Name string
	Size int64 // as the platform declared it; 0 when unknown
	// MaxFetch is the most the platform lets the bot download (Telegram's getFile: 20 MB); 0 means
	// no limit of its own.
	MaxFetch int64
	// Fetch downloads the bytes into memory. It fails with an error wrapping ErrTooBig, without
	// reading further, when they pass limit. The bridge owns what it returns and may overwrite it
	// (the metadata filter works in place).
	Fetch func(ctx context.Context, limit int64) ([]byte, error)
	// Native is the platform's own handle on the message (Telegram: chat and message id), which a
	// MediaCopier of the same platform resends without the bytes passing through kumo. Adapters set
	// it only where such a copy cannot carry metadata (Telegram's own recompressed photos, voice
	// notes, stickers).
	Native string
}

// Media is an attachment's bytes as the bridge hands them to an adapter: metadata already
// stripped, Name neutral.
type Media struct {
	Kind MediaKind
	MIME string
	Name string
	Data []byte
}

// MediaSender is a platform that can show members photos, files and voice notes. Without it the
// bridge tells the platform's members what they missed.
type MediaSender interface {
	// MaxUpload is the largest file of that kind the bot may send (Telegram: 10 MB photos, 50 MB
	// other files).
	MaxUpload(kind MediaKind) int64
	// SendMedia shows md with m (a KindRelay: the sender's pseudonym and the caption). It returns
	// the ids of every message it created, as SendImage does. A file the platform refuses for its
	// size is an error wrapping both ErrRejected and ErrTooBig.
	SendMedia(ctx context.Context, to Addr, md Media, m Message) ([]MessageID, error)
}

// MediaCopier is a platform that can resend an attachment received on it without downloading it
// (Telegram's copyMessage), from its Attachment.Native handle.
type MediaCopier interface {
	CopyMedia(ctx context.Context, to Addr, native string, m Message) ([]MessageID, error)
}

// ErrTooBig is a file larger than a platform or kumo allows.
var ErrTooBig = errors.New("file is too big")

// mediaPart is the media a delivery carries: a shared blob to upload, or a native handle to copy.
type mediaPart struct {
	blob   *mediaBlob
	native string
	kind   MediaKind
}

// mediaBlob is one attachment's bytes, held once for all its recipients. Its bytes count against
// the global media memory until the last delivery that needs them is done.
type mediaBlob struct {
	md   Media
	refs atomic.Int64
	free func() // gives its bytes back to the memory budget
}

func (b *mediaBlob) hold() { b.refs.Add(1) }

func (b *mediaBlob) done() {
	if b.refs.Add(-1) == 0 {
		b.md.Data = nil
		b.free()
	}
}

// done is called once a delivery of this part is over, delivered or not.
func (p *mediaPart) done() {
	if p != nil && p.blob != nil {
		p.blob.done()
	}
}

// relayMedia sends a member's attachments to the room; the caption goes with the first.
func (b *Bridge) relayMedia(ctx context.Context, room rooms.Room, me rooms.Member, atts []Attachment, caption string) {
	for i, a := range atts {
		if i > 0 {
			caption = ""
		}
		b.relayAttachment(ctx, room, me, a, caption)
	}
}

// relayAttachment runs in the sender's lane: the download happens here, once, before the fan-out,
// so a recipient's lane only ever waits for its own upload. Waiting for media memory holds up only
// this sender.
func (b *Bridge) relayAttachment(ctx context.Context, room rooms.Room, me rooms.Member, a Attachment, caption string) {
	b.stats.relayed.Add(1)
	msg := Message{Kind: KindRelay, From: me.Nick, Text: caption}
	var (
		uploads []rooms.Member
		limit   int64 // the largest any uploading recipient takes
	)
	for _, m := range room.Members {
		if m.Key() == me.Key() {
			continue
		}
		p := b.platforms[m.Platform]
		if _, ok := p.(MediaCopier); ok && a.Native != "" && m.Platform == me.Platform {
			b.push(delivery{to: addrOf(m), msg: msg, media: &mediaPart{native: a.Native, kind: a.Kind}, sender: me.Key(), queued: b.now(), trace: b.roomTrace(room.ID, addrOf(m))})
			continue
		}
		s, ok := p.(MediaSender)
		if !ok {
			b.mediaNotice(b.roomTrace(room.ID, addrOf(m)), m, me.Nick, a.Kind, caption)
			continue
		}
		uploads = append(uploads, m)
		limit = max(limit, b.uploadLimit(s, a.Kind))
	}
	if len(uploads) == 0 {
		return
	}
	if a.MaxFetch > 0 {
		limit = min(limit, a.MaxFetch)
	}
	if a.Fetch == nil {
		b.reply(addrOf(me), fmt.Sprintf("📎 Your %s could not be relayed: %s does not let me download it.", kindName(a.Kind), me.Platform))
		return
	}
	if a.Size > limit {
		b.tooBig(me, a.Kind, a.Size, limit, "")
		return
	}
	// Reserve what the file will take before downloading it: the platform's declared size, or
	// the most it may be when it declares none.
	reserve := limit
	if a.Size > 0 {
		reserve = a.Size
	}
	if err := b.acquireMedia(ctx, reserve); err != nil {
		return // kumo is stopping
	}
	data, err := a.Fetch(ctx, limit)
	if err == nil && int64(len(data)) > reserve {
		// The platform declared less than it sent: the rest must fit the budget too.
		if !b.tryAcquireMedia(int64(len(data)) - reserve) {
			err = fmt.Errorf("%w: larger than declared", ErrTooBig)
		} else {
			reserve = int64(len(data))
		}
	}
	if err != nil {
		b.releaseMedia(reserve)
		switch {
		case errors.Is(err, ErrTooBig):
			b.tooBig(me, a.Kind, a.Size, limit, "")
		case ctx.Err() != nil:
		default:
			b.log.Warn("media download failed", "platform", me.Platform, "kind", string(a.Kind), "err", err)
			b.reply(addrOf(me), fmt.Sprintf("📎 Your %s could not be downloaded from %s, so it was not relayed. Please send it again.", kindName(a.Kind), me.Platform))
		}
		return
	}
	// In place: the file is held once, not twice, while its metadata goes.
	clean, _, err := stripInPlace(data)
	if err != nil {
		b.releaseMedia(reserve)
		b.reply(addrOf(me), fmt.Sprintf("📎 Your %s looks damaged, so I could not remove its metadata (%s): it was not relayed.", kindName(a.Kind), metadataOf(a.Kind)))
		return
	}
	// Whatever the filter cut is already garbage: only what remains counts from here on.
	if held := int64(len(clean)); held < reserve {
		b.releaseMedia(reserve - held)
		reserve = held
	}
	blob := &mediaBlob{md: Media{Kind: a.Kind, MIME: mediaType(a.MIME, clean), Name: NeutralName(a.Kind, a.Name, a.MIME), Data: clean}}
	blob.free = func() { b.releaseMedia(reserve) }
	blob.hold() // the fan-out's own reference, dropped below
	var refused map[string]int64
	for _, m := range uploads {
		lim := b.uploadLimit(b.platforms[m.Platform].(MediaSender), a.Kind)
		if int64(len(clean)) > lim {
			if refused == nil {
				refused = map[string]int64{}
			}
			refused[m.Platform] = lim
			continue
		}
		blob.hold()
		b.push(delivery{to: addrOf(m), msg: msg, media: &mediaPart{blob: blob, kind: a.Kind}, sender: me.Key(), queued: b.now(), trace: b.roomTrace(room.ID, addrOf(m))})
	}
	for platform, lim := range refused {
		b.tooBig(me, a.Kind, int64(len(clean)), lim, platform)
	}
	blob.done()
}

// uploadLimit is the largest file of kind that may go to the platform: its own limit and kumo's.
func (b *Bridge) uploadLimit(s MediaSender, kind MediaKind) int64 {
	lim := b.cfg.MaxMediaBytes
	if l := s.MaxUpload(kind); l > 0 {
		lim = min(lim, l)
	}
	return lim
}

// tooBig tells the sender, and nobody else, that their file was not relayed (to members on
// platform, when only they could not take it).
func (b *Bridge) tooBig(me rooms.Member, kind MediaKind, size, limit int64, platform string) {
	what := "Your " + kindName(kind)
	if size > 0 {
		what += " (" + humanBytes(size) + ")"
	}
	if platform != "" {
		b.reply(addrOf(me), fmt.Sprintf("📎 %s is too big for the members on %s (their limit is %s): they did not get it.", what, platform, humanBytes(limit)))
		return
	}
	b.reply(addrOf(me), fmt.Sprintf("📎 %s is too big to relay: the limit is %s. Nobody got it.", what, humanBytes(limit)))
}

// mediaNotice tells a member on a platform without media what they missed, and gives them the
// caption.
func (b *Bridge) mediaNotice(t rooms.Trace, to rooms.Member, nick string, kind MediaKind, caption string) {
	b.sendTraced(t, addrOf(to), Message{Kind: KindNotice, Text: fmt.Sprintf("📎 %s sent %s, which %s can't show here.", nick, kind.noun(), to.Platform)}, nil, "")
	if strings.TrimSpace(caption) == "" {
		return
	}
	for _, p := range b.splitFor(to.Platform, Message{Kind: KindRelay, From: nick, Text: caption}) {
		b.sendTraced(t, addrOf(to), p, nil, "")
	}
}

// sendMedia is a media delivery's one attempt.
func (b *Bridge) sendMedia(ctx context.Context, p Platform, d delivery) ([]MessageID, error) {
	if d.media.native != "" {
		c, ok := p.(MediaCopier)
		if !ok {
			return nil, fmt.Errorf("%w: %s cannot copy media", ErrRejected, p.Name())
		}
		return c.CopyMedia(ctx, d.to, d.media.native, d.msg)
	}
	s, ok := p.(MediaSender)
	if !ok {
		return nil, fmt.Errorf("%w: %s cannot send media", ErrRejected, p.Name())
	}
	return s.SendMedia(ctx, d.to, d.media.blob.md, d.msg)
}

// metadataOf says what a file of the kind may carry that the filter removes, in the sender's words.
func metadataOf(k MediaKind) string {
	switch k {
	case MediaVoice, MediaAudio:
		return "tags such as an artist, a title or a picture"
	case MediaVideo, MediaVideoNote, MediaAnimation:
		return "where and with what it was recorded"
	case MediaPhoto, MediaSticker:
		return "where and with what it was taken"
	}
	return "names, places and devices it may record"
}

func kindName(k MediaKind) string {
	switch k {
	case MediaVoice:
		return "voice note"
	case MediaVideoNote:
		return "video message"
	case MediaAudio:
		return "audio file"
	}
	return string(k)
}

// NeutralName is the file name members see: the kind's word and the original extension, so the
// name a sender's device gave the file ("IMG_JohnSmith.jpg") never reaches anyone.
func NeutralName(kind MediaKind, name, mimeType string) string {
	ext := strings.ToLower(path.Ext(strings.ReplaceAll(name, "\\", "/")))
	if !validExt(ext) {
		ext = extFor(mimeType)
	}
	base := "file"
	switch kind {
	case MediaPhoto:
		base = "photo"
	case MediaVoice:
		base = "voice"
	case MediaAudio:
		base = "audio"
	case MediaVideo, MediaVideoNote:
		base = "video"
	case MediaAnimation:
		base = "animation"
	case MediaSticker:
		base = "sticker"
	}
	return base + ext
}

// extFor is the extension a file of mimeType is known by. The usual ones come first: the system's
// table (mime.ExtensionsByType, sorted) would name a JPEG ".jfif", a text ".asc" and an Ogg voice
// note ".oga", and differs from one machine to the next.
func extFor(mimeType string) string {
	mt, _, _ := mime.ParseMediaType(mimeType)
	switch mt {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "audio/ogg", "audio/opus":
		return ".ogg"
	case "audio/mpeg":
		return ".mp3"
	case "audio/mp4":
		return ".m4a"
	case "video/mp4":
		return ".mp4"
	case "video/webm":
		return ".webm"
	case "video/quicktime":
		return ".mov"
	case "text/plain":
		return ".txt"
	case "application/pdf":
		return ".pdf"
	case "application/zip":
		return ".zip"
	}
	if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 && validExt(exts[0]) {
		return exts[0]
	}
	return ""
}

// validExt accepts a short extension of letters and digits: anything else might be a name in
// disguise ("photo.John Smith").
func validExt(ext string) bool {
	if len(ext) < 2 || len(ext) > 6 {
		return false
	}
	for _, r := range ext[1:] {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// mediaType is the declared MIME type when it is a well-formed one, else what the bytes look like
// (the WHATWG sniffing net/http implements: GIF, PNG, JPEG, WebP, PDF, Ogg, MP4...).
func mediaType(declared string, data []byte) string {
	if t, _, err := mime.ParseMediaType(declared); err == nil && strings.Contains(t, "/") {
		return t
	}
	t, _, _ := mime.ParseMediaType(http.DetectContentType(data))
	if t == "" {
		return "application/octet-stream"
	}
	return t
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// handleMedia runs in the sender's lane for a message with attachments; its text is their caption.
func (b *Bridge) handleMedia(ctx context.Context, in Inbound) {
	caption := strings.ToValidUTF8(in.Text, "\uFFFD")
	if n := utf8.RuneCountInString(caption); n > MaxInbound {
		b.reply(in.From, fmt.Sprintf("That caption is too long (%d characters; the limit is %d). Nothing was relayed.", n, MaxInbound))
		return
	}
	room, me, err := b.store.RoomOf(in.From.Key())
	if err != nil {
		b.reply(in.From, "You are not in a room, so that was not sent anywhere. Send /newroom to open one, or send a room's password to join it.")
		return
	}
	b.relayMedia(ctx, room, me, in.Attachments, caption)
}

// acquireMedia waits until n more media bytes fit the memory budget.
func (b *Bridge) acquireMedia(ctx context.Context, n int64) error {
	if err := b.mediaMem.Acquire(ctx, n); err != nil {
		return err
	}
	b.noteMedia(n)
	return nil
}

func (b *Bridge) tryAcquireMedia(n int64) bool {
	if !b.mediaMem.TryAcquire(n) {
		return false
	}
	b.noteMedia(n)
	return true
}

func (b *Bridge) noteMedia(n int64) {
	held := b.mediaHeld.Add(n)
	for {
		peak := b.mediaPeak.Load()
		if held <= peak || b.mediaPeak.CompareAndSwap(peak, held) {
			return
		}
	}
}

func (b *Bridge) releaseMedia(n int64) {
	b.mediaHeld.Add(-n)
	b.mediaMem.Release(n)
}
