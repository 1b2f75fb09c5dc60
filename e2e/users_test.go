package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/platforms/discord/discordtest"
	"github.com/kumo-chat/kumo/platforms/matrix/matrixtest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// person is a test user on one platform, driven the way that platform's people use kumo: by
// writing in their private chat with the bot.
type person interface {
	// platform is the messenger's name, as it must never appear in what others receive.
	platform() string
	// traces are what identifies the person on their platform (ids, names): none may reach others.
	traces() []string
	send(t testing.TB, ctx context.Context, text string)
	// seen is the plain text of everything the bot showed them, in order (markup rendered away).
	seen() []string
}

// waitSeen polls p's messages from index from on until one satisfies match, and returns its index
// and text. Polling a condition with a deadline (not sleeping and hoping) keeps tests deterministic.
func waitSeen(t testing.TB, ctx context.Context, p person, from int, what string, match func(string) bool) (int, string) {
	t.Helper()
	for {
		all := p.seen()
		for i := from; i < len(all); i++ {
			if match(all[i]) {
				return i, all[i]
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never saw %s; saw:\n%s", p.platform(), what, strings.Join(all, "\n---\n"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func contains(s string) func(string) bool {
	return func(m string) bool { return strings.Contains(m, s) }
}

// --- Telegram, through the fake's injection API ---

type tgPerson struct {
	fake *telegramtest.Server
	u    telegramtest.User
}

var tgSeq atomic.Int64

func newTG(fake *telegramtest.Server, first string) *tgPerson {
	n := tgSeq.Add(1)
	return &tgPerson{fake: fake, u: telegramtest.User{ID: 500_000_000 + n, FirstName: first, Username: fmt.Sprintf("%s_tg%d", strings.ToLower(first), n)}}
}

func (p *tgPerson) platform() string { return "telegram" }
func (p *tgPerson) traces() []string {
	return []string{strconv.FormatInt(p.u.ID, 10), p.u.Username, p.u.FirstName}
}
func (p *tgPerson) send(_ testing.TB, _ context.Context, text string) {
	p.fake.Inject(telegramtest.Incoming{From: p.u, Text: text})
}
func (p *tgPerson) seen() []string {
	sent := p.fake.Sent(p.u.ID)
	out := make([]string, len(sent))
	for i, s := range sent {
		out[i] = s.Text
	}
	return out
}

// --- Discord, through the fake's gateway ---

type dcPerson struct {
	fake *discordtest.Server
	u    discordtest.User
	ch   string

	// The fake forgets what the bot deleted (the wipe): seen keeps what it saw once. Messages are
	// deleted seconds after they are sent, long after the 10 ms polls of waitSeen saw them.
	mu    sync.Mutex
	known map[string]bool
	hist  []string
}

func newDC(fake *discordtest.Server, name string) *dcPerson {
	u := fake.AddUser(name)
	return &dcPerson{fake: fake, u: u, ch: fake.DMChannel(u.ID), known: map[string]bool{}}
}

func (p *dcPerson) platform() string { return "discord" }
func (p *dcPerson) traces() []string { return []string{p.u.ID, p.u.Username, p.ch} }
func (p *dcPerson) send(_ testing.TB, _ context.Context, text string) {
	p.fake.SendDM(p.u.ID, text)
}
func (p *dcPerson) seen() []string {
	msgs := p.fake.Messages(p.ch)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		if !p.known[m.ID] {
			p.known[m.ID] = true
			p.hist = append(p.hist, discordPlain(m.Content))
		}
	}
	return append([]string(nil), p.hist...)
}

// discordPlain renders Discord markdown as the reader sees it: escapes resolved, emphasis markers
// and code fences gone.
func discordPlain(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && strings.IndexByte("\\*_~`|><#-[]@", s[i+1]) >= 0:
			b.WriteByte(s[i+1])
			i++
		case strings.HasPrefix(s[i:], "```\n"):
			i += 3
		case strings.HasPrefix(s[i:], "\n```"):
			i += 3
		case c == '*':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// --- Matrix: an ordinary encrypting client in an encrypted DM with the bot ---

type mxPerson struct {
	u   *matrixtest.User
	dm  id.RoomID
	bot id.UserID

	decrypted map[id.EventID][]byte // attachments the bot sent, downloaded once (received)
}

var mxSeq atomic.Int64

// newMX registers a Matrix user, opens an encrypted DM with kumo's bot and waits until the bot
// answers in it, so what follows lands in a steady sync on both sides.
func newMX(t testing.TB, ctx context.Context, k *kumo, prefix string) *mxPerson {
	t.Helper()
	local := fmt.Sprintf("%s%d", prefix, mxSeq.Add(1))
	pw := "user-password-" + local
	if _, err := k.homeserver.Register(ctx, local, pw); err != nil {
		t.Fatal(err)
	}
	u, err := k.homeserver.Login(ctx, local, pw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	bot := id.UserID(k.matrixBot)
	dm, err := u.CreateDM(ctx, bot, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.WaitJoined(ctx, dm, bot); err != nil {
		t.Fatalf("kumo's bot never joined the DM: %v\n%s", err, tail(k.output(), 4000))
	}
	p := &mxPerson{u: u, dm: dm, bot: bot}
	// The bot's own sync may still be catching up with its join: a message sent now could be one
	// Dendrite leaves out of that sync. /help is harmless to repeat; once one is answered, both
	// sides are in a steady sync.
	for attempt := 0; ; attempt++ {
		n := len(p.seen())
		p.send(t, ctx, "/help")
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		answered := waitSeenOK(wctx, p, n, contains("/newroom"))
		cancel()
		if answered {
			break
		}
		if ctx.Err() != nil || attempt == 10 {
			t.Fatalf("kumo's bot never answered in the Matrix DM\n%s", tail(k.output(), 4000))
		}
	}
	return p
}

// waitSeenOK is waitSeen that reports instead of failing.
func waitSeenOK(ctx context.Context, p person, from int, match func(string) bool) bool {
	for {
		all := p.seen()
		for i := from; i < len(all); i++ {
			if match(all[i]) {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (p *mxPerson) platform() string { return "matrix" }
func (p *mxPerson) traces() []string {
	local := strings.TrimPrefix(strings.Split(p.u.ID.String(), ":")[0], "@")
	return []string{p.u.ID.String(), local, p.dm.String(), p.u.Client.DeviceID.String()}
}
func (p *mxPerson) send(t testing.TB, ctx context.Context, text string) {
	t.Helper()
	if err := p.u.SendText(ctx, p.dm, text); err != nil {
		t.Fatalf("matrix send: %v", err)
	}
}
func (p *mxPerson) seen() []string {
	evs := p.u.Messages(p.dm, p.bot)
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		if c := e.Content.AsMessage(); c != nil && c.MsgType != event.MsgImage {
			out = append(out, c.Body)
		}
	}
	return out
}

// sendFile sends a file as an encrypting client does in an encrypted DM: encrypted with a fresh
// key (mautrix's attachment encryption), uploaded as opaque bytes, and its key in the event.
func (p *mxPerson) sendFile(t testing.TB, ctx context.Context, kind event.MessageType, name, mimeType string, plain []byte) {
	t.Helper()
	p.sendAttachment(t, ctx, event.EventMessage, &event.MessageEventContent{MsgType: kind, Body: name, Info: &event.FileInfo{MimeType: mimeType, Size: len(plain)}}, plain)
}

// sendSticker sends an m.sticker event (its body the sticker's name in its pack).
func (p *mxPerson) sendSticker(t testing.TB, ctx context.Context, name, mimeType string, plain []byte) {
	t.Helper()
	p.sendAttachment(t, ctx, event.EventSticker, &event.MessageEventContent{Body: name, Info: &event.FileInfo{MimeType: mimeType, Size: len(plain)}}, plain)
}

// sendVoice sends a voice note as Element records one: m.audio with MSC3245's voice marker.
func (p *mxPerson) sendVoice(t testing.TB, ctx context.Context, mimeType string, plain []byte) {
	t.Helper()
	p.sendAttachment(t, ctx, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgAudio, Body: "Voice message",
		Info: &event.FileInfo{MimeType: mimeType, Size: len(plain)}, MSC3245Voice: &event.MSC3245Voice{}}, plain)
}

func (p *mxPerson) sendAttachment(t testing.TB, ctx context.Context, typ event.Type, content *event.MessageEventContent, plain []byte) {
	t.Helper()
	file := attachment.NewEncryptedFile()
	data := append([]byte(nil), plain...)
	file.EncryptInPlace(data)
	up, err := p.u.Client.UploadBytes(ctx, data, "application/octet-stream")
	if err != nil {
		t.Fatalf("matrix upload: %v", err)
	}
	content.File = &event.EncryptedFileInfo{EncryptedFile: *file, URL: up.ContentURI.CUString()}
	if _, err := p.u.Client.SendMessageEvent(ctx, p.dm, typ, content); err != nil {
		t.Fatalf("matrix send file: %v", err)
	}
}

// files is the bot's messages in the DM that carry media.
func (p *mxPerson) files() []*event.MessageEventContent {
	var out []*event.MessageEventContent
	for _, e := range p.u.Messages(p.dm, p.bot) {
		if c := e.Content.AsMessage(); c != nil && (c.File != nil || c.URL != "") {
			out = append(out, c)
		}
	}
	return out
}

// --- The web chat: a WebSocket client speaking the page's protocol ---

type webPerson struct {
	conn *websocket.Conn
	wmu  sync.Mutex

	mu   sync.Mutex
	got  []string
	recv []time.Time // when each of got arrived
	err  error
	// lines is what the page would still show, by seq ("o<n>" for the visitor's own lines, which
	// the page shows itself); ownSeq numbers those lines.
	lines  map[string]string
	order  []string
	ownSeq int
	// The conversation as the page shows it, by page id: what each line replies to, which lines
	// were edited, and the others' reactions on each.
	replyTo   map[string]string
	edited    map[string]bool
	reactions map[string][]string
	// base is kumo's web address, token the session's secret from hello (for POST /media) and
	// media the files the page was offered, in order.
	base  string
	token string
	media []webMedia
	// fetched is what each offered URL downloaded (received), so a poll fetches each file once.
	fetched map[string][]byte
}

// webMedia is a file the page is offered with a message.
type webMedia struct {
	URL    string `json:"url"`
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Size   int    `json:"size"`
	Inline bool   `json:"inline"`
}

// webEvent is what the page receives (the fields the tests read).
type webEvent struct {
	Seq   uint64    `json:"seq"`
	Type  string    `json:"type"`
	Kind  string    `json:"kind"`
	From  string    `json:"from"`
	Text  string    `json:"text"`
	Code  string    `json:"code"`
	Error string    `json:"error"`
	IDs   []string  `json:"ids"`
	Token string    `json:"token"`
	Media *webMedia `json:"media"`
	// Lines is a combined send: the page shows one message per line.
	Lines []struct {
		From string `json:"from"`
		Text string `json:"text"`
	} `json:"lines"`
	// ReplyTo ("msg") and Target ("edit", "react") are page ids of messages.
	ReplyTo   string   `json:"replyTo"`
	Target    string   `json:"target"`
	Reactions []string `json:"reactions"`
}

func newWeb(t testing.TB, ctx context.Context, k *kumo) *webPerson {
	t.Helper()
	u, _ := url.Parse(k.url)
	u.Scheme = "ws"
	u.Path = "/ws"
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, u.String(), nil)
	if err != nil {
		t.Fatalf("web: %v", err)
	}
	p := &webPerson{conn: conn, lines: map[string]string{}, replyTo: map[string]string{}, edited: map[string]bool{}, reactions: map[string][]string{}, base: k.url}
	if err := conn.WriteJSON(map[string]string{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	go p.read()
	t.Cleanup(func() { conn.Close() })
	return p
}

func (p *webPerson) read() {
	for {
		var ev webEvent
		if err := p.conn.ReadJSON(&ev); err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
			return
		}
		if ev.Type == "hello" && ev.Token != "" {
			p.mu.Lock()
			p.token = ev.Token
			p.mu.Unlock()
		}
		if ev.Media != nil {
			p.mu.Lock()
			p.media = append(p.media, *ev.Media)
			p.mu.Unlock()
		}
		if ev.Type == "delete" {
			p.mu.Lock()
			for _, id := range ev.IDs {
				delete(p.lines, id)
			}
			p.mu.Unlock()
		}
		switch ev.Type {
		case "edit":
			text := bridge.Message{Kind: bridge.KindRelay, From: ev.From, Text: ev.Text}.String()
			p.mu.Lock()
			if _, ok := p.lines[ev.Target]; ok {
				p.lines[ev.Target] = text
				p.edited[ev.Target] = true
			}
			p.mu.Unlock()
		case "react":
			p.mu.Lock()
			p.reactions[ev.Target] = ev.Reactions
			p.mu.Unlock()
		}
		if ev.Type != "msg" {
			continue
		}
		m := bridge.Message{Text: ev.Text, From: ev.From, Code: ev.Code}
		switch ev.Kind {
		case "relay":
			m.Kind = bridge.KindRelay
		case "notice":
			m.Kind = bridge.KindNotice
		}
		shown := []string{m.String()}
		if len(ev.Lines) > 0 {
			shown = shown[:0]
			for _, l := range ev.Lines {
				shown = append(shown, bridge.Message{Kind: bridge.KindRelay, From: l.From, Text: l.Text}.String())
			}
		}
		now := time.Now()
		p.mu.Lock()
		for _, s := range shown {
			p.got = append(p.got, s)
			p.recv = append(p.recv, now)
		}
		seq := strconv.FormatUint(ev.Seq, 10)
		p.lines[seq] = strings.Join(shown, "\n")
		p.order = append(p.order, seq)
		if ev.ReplyTo != "" {
			p.replyTo[seq] = ev.ReplyTo
		}
		p.mu.Unlock()
	}
}

func (p *webPerson) platform() string { return "web" }
func (p *webPerson) traces() []string { return nil }
func (p *webPerson) send(t testing.TB, _ context.Context, text string) {
	p.sendReply(t, text, "")
}

// sendReply sends text as the page does, as a reply to the page's message replyTo when it is not
// "", and returns the page's id of the visitor's new line ("o3").
func (p *webPerson) sendReply(t testing.TB, text, replyTo string) string {
	// Like the page: every line the visitor writes is numbered, and shown as their own.
	p.mu.Lock()
	p.ownSeq++
	own := strconv.Itoa(p.ownSeq)
	p.lines["o"+own] = text
	p.order = append(p.order, "o"+own)
	p.mu.Unlock()
	p.write(t, map[string]string{"type": "text", "text": text, "id": own, "replyTo": replyTo})
	return "o" + own
}

// write sends one event of the page's protocol.
func (p *webPerson) write(t testing.TB, ev map[string]string) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := p.conn.WriteJSON(ev); err != nil {
		t.Errorf("web send: %v", err)
	}
}
func (p *webPerson) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

// upload sends a file as the page does: POST /media with the session's secret and the file's name
// and caption percent-encoded in headers.
func (p *webPerson) upload(t testing.TB, ctx context.Context, name, mimeType, caption string, data []byte) {
	t.Helper()
	p.mu.Lock()
	token := p.token
	p.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/media", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mimeType)
	req.Header.Set("X-Kumo-Token", token)
	req.Header.Set("X-Kumo-Name", url.PathEscape(name))
	req.Header.Set("X-Kumo-Caption", url.PathEscape(caption))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("web upload: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("web upload: %s: %s", resp.Status, b)
	}
}

// offered is the files the page was offered so far.
func (p *webPerson) offered() []webMedia {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]webMedia(nil), p.media...)
}

// download fetches a file the page was offered, as the page's link does; it returns the status.
func (p *webPerson) download(t testing.TB, ctx context.Context, m webMedia) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+m.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("web download: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("web download: %v", err)
	}
	return resp.StatusCode, b
}
