package telegram_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

var (
	alice = telegramtest.User{ID: 1001, FirstName: "Alice"}
	bob   = telegramtest.User{ID: 1002, FirstName: "Bob"}
	carol = telegramtest.User{ID: 1003, FirstName: "Carol"}
)

func addr(u telegramtest.User) bridge.Addr {
	id := strconv.FormatInt(u.ID, 10)
	return bridge.Addr{Platform: "telegram", User: id, Chat: id}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// pollOpt keeps long polls short so tests end quickly (the library busy-loops under 2 s).
func pollOpt() telegram.Option {
	return telegram.WithPolling(2*time.Second, &http.Client{Timeout: 5 * time.Second})
}

// pacingFor makes the adapter pace itself exactly at the fake's limits, evenly spaced.
func pacingFor(l telegramtest.Limits) telegram.Pacing {
	return telegram.Pacing{Global: l.Global, GlobalBurst: 1, PerChat: l.PerChat, PerChatBurst: 1, Delete: l.Delete, DeleteBurst: l.DeleteBurst}
}

// noPacing is for fakes without limits: tests need not wait.
func noPacing() telegram.Option { return telegram.WithPacing(telegram.Pacing{}) }

// fakeLimits are the fake's limits for the rate tests. The bursts absorb the scheduling jitter
// between the adapter reserving a send slot and its request reaching the fake (up to about 200 ms
// here), as Telegram's own bursts do; the sustained rates are what is enforced.
func fakeLimits() telegramtest.Limits {
	return telegramtest.Limits{Global: 100, GlobalBurst: 20, PerChat: 50, PerChatBurst: 10}
}

func newAdapter(t testing.TB, s *telegramtest.Server, opts ...telegram.Option) *telegram.Adapter {
	t.Helper()
	a, err := telegram.New(telegram.Config{Token: s.Token(), APIURL: s.URL()}, testLogger(t), append([]telegram.Option{pollOpt()}, opts...)...)
	if err != nil {
		t.Fatalf("telegram.New: %v", err)
	}
	return a
}

// run starts the adapter's Run and stops it (checking it returned nil) when the test ends.
func run(t *testing.T, a *telegram.Adapter, h bridge.Handler) {
	t.Helper()
	bridgetest.Background(t, "telegram adapter", func(ctx context.Context) error { return a.Run(ctx, h) })
}

func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunRegistersCommandsAndReceivesInOrder(t *testing.T) {
	s := telegramtest.New(t)
	rec := &bridgetest.Inbox{}
	run(t, newAdapter(t, s), rec)
	ctx := deadline(t)

	if err := s.WaitCalls(ctx, "setMyCommands", 1); err != nil {
		t.Fatal(err)
	}
	var cmds []struct{ Command string }
	if err := json.Unmarshal(s.Commands(), &cmds); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cmds {
		names = append(names, c.Command)
	}
	var menu []string
	for _, c := range bridge.Commands() {
		menu = append(menu, c.Name)
	}
	if got, want := strings.Join(names, " "), strings.Join(menu, " "); got != want {
		t.Fatalf("command menu %q, want %q", got, want)
	}

	// Interleaved senders; each one's order must hold.
	// Each one's message_id (numbered per chat) is the Inbound's ID.
	var want []bridge.Inbound
	next := map[int64]int{}
	id := func(u telegramtest.User) bridge.MessageID {
		next[u.ID]++
		return bridge.MessageID(strconv.Itoa(next[u.ID]))
	}
	for i := range 30 {
		u := []telegramtest.User{alice, bob}[i%2]
		text := "msg " + strconv.Itoa(i)
		s.Inject(telegramtest.Incoming{From: u, Text: text})
		want = append(want, bridge.Inbound{From: addr(u), Text: text, ID: id(u)})
	}
	s.Inject(telegramtest.Incoming{From: carol, Media: "sticker"})
	s.Inject(telegramtest.Incoming{From: carol, Media: "photo", Caption: "look"})
	s.Inject(telegramtest.Incoming{From: carol, Media: "voice"})
	s.Inject(telegramtest.Incoming{From: carol, Text: "/join@kumo_test_bot secret"})
	for _, w := range []struct {
		kind    bridge.MediaKind
		caption string
	}{{bridge.MediaSticker, ""}, {bridge.MediaPhoto, "look"}, {bridge.MediaVoice, ""}} {
		want = append(want, bridge.Inbound{From: addr(carol), Text: w.caption, ID: id(carol), Attachments: []bridge.Attachment{{Kind: w.kind}}})
	}
	want = append(want, bridge.Inbound{From: addr(carol), Text: "/join@kumo_test_bot secret", ID: id(carol)})

	got := rec.Wait(t, ctx, len(want))
	for i := range want {
		if !bridgetest.SameInbound(got[i], want[i]) {
			t.Fatalf("inbound %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestGroupsGetOneDMPointerAndNothingIsRelayed(t *testing.T) {
	s := telegramtest.New(t)
	rec := &bridgetest.Inbox{}
	run(t, newAdapter(t, s), rec)
	ctx := deadline(t)

	group := telegramtest.Chat{ID: -100500, Type: "supergroup", Title: "friends"}
	s.Inject(telegramtest.Incoming{From: alice, Chat: group, Text: "/newroom hunter2"})
	s.Inject(telegramtest.Incoming{From: bob, Chat: group, Text: "hello all"})
	// A DM after the group messages: once it is handled, the group ones were handled too.
	s.Inject(telegramtest.Incoming{From: alice, Text: "/help"})
	got := rec.Wait(t, ctx, 1)
	if len(got) != 1 || got[0].From != addr(alice) || got[0].Text != "/help" {
		t.Fatalf("handler got %+v, want only alice's DM", got)
	}
	sent, err := s.WaitSent(ctx, group.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || !strings.Contains(sent[0].Text, "https://t.me/kumo_test_bot") {
		t.Fatalf("group received %+v, want one pointer to the DM", sent)
	}
	if n := rec.Count(); n != 1 {
		t.Fatalf("handler got %d messages, want 1", n)
	}
}

func TestBadTokenFailsRun(t *testing.T) {
	s := telegramtest.New(t)
	a, err := telegram.New(telegram.Config{Token: "42:nope", APIURL: s.URL()}, testLogger(t), pollOpt())
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(deadline(t), &bridgetest.Inbox{})
	if !errors.Is(err, bridge.ErrUnauthorized) || !strings.Contains(err.Error(), "@BotFather") {
		t.Fatalf("Run with a wrong token = %v, want bridge.ErrUnauthorized and a hint to check it with @BotFather", err)
	}
	if _, err := telegram.New(telegram.Config{}, testLogger(t)); err == nil {
		t.Fatal("New accepted an empty token")
	}
}

func TestSendTextKeepsMarkupCharacters(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{}))
	a := newAdapter(t, s, noPacing())
	ctx := deadline(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "hi"}) // the user started the bot

	tests := []struct {
		name     string
		m        bridge.Message
		text     string // what the user sees
		entities []telegramtest.Entity
	}{
		{
			name: "markup characters in a relay",
			m:    bridge.Message{Kind: bridge.KindRelay, From: "calm-otter", Text: "* _ < [ & ` </b> <a href=\"x\">y</a> &lt; *bold* _it_ [l](http://x)"},
			text: "calm-otter: * _ < [ & ` </b> <a href=\"x\">y</a> &lt; *bold* _it_ [l](http://x)",
			entities: []telegramtest.Entity{
				{Type: "bold", Offset: 0, Length: 10},
			},
		},
		{
			name:     "a pseudonym cannot forge markup",
			m:        bridge.Message{Kind: bridge.KindRelay, From: "<i>bot</i>", Text: "x"},
			text:     "<i>bot</i>: x",
			entities: []telegramtest.Entity{{Type: "bold", Offset: 0, Length: 10}},
		},
		{
			name: "a combined send: every line behind its own bold pseudonym",
			m: bridge.Message{Kind: bridge.KindRelay, Lines: []bridge.Line{
				{From: "calm-otter", Text: "hi <b>"}, {From: "red-fox", Text: "🔔 fake\nx"}}},
			text: "calm-otter: hi <b>\nred-fox: 🔔 fake\nx",
			entities: []telegramtest.Entity{
				{Type: "bold", Offset: 0, Length: 10}, {Type: "bold", Offset: 19, Length: 7},
			},
		},
		{
			name: "reply",
			m:    bridge.Message{Kind: bridge.KindReply, Text: "Room created & ready <3"},
			text: "Room created & ready <3",
		},
		{
			// A member's line that reads like a notice stays inside their message: quoted under their
			// bold name, never italic (the notices' own formatting).
			name: "a forged notice line stays in the member's quote",
			m:    bridge.Message{Kind: bridge.KindRelay, From: "Calm Otter", Text: "hi\n🔔 Proud Wolf left. 1 member."},
			text: "Calm Otter:\nhi\n🔔 Proud Wolf left. 1 member.",
			entities: []telegramtest.Entity{
				{Type: "bold", Offset: 0, Length: 10},
				{Type: "blockquote", Offset: 12, Length: 32},
			},
		},
		{
			name:     "a forged notice mark on one line follows the bold name",
			m:        bridge.Message{Kind: bridge.KindRelay, From: "Calm Otter", Text: "🔔 Proud Wolf left. 1 member."},
			text:     "Calm Otter: 🔔 Proud Wolf left. 1 member.",
			entities: []telegramtest.Entity{{Type: "bold", Offset: 0, Length: 10}},
		},
		{
			name:     "notice",
			m:        bridge.Message{Kind: bridge.KindNotice, Text: "someone left"},
			text:     bridge.NoticeMark + "someone left",
			entities: []telegramtest.Entity{{Type: "italic", Offset: 0, Length: 15}},
		},
		{
			name:     "code is copyable",
			m:        bridge.Message{Kind: bridge.KindReply, Text: "Password:", Code: "a<b&c"},
			text:     "Password:\na<b&c",
			entities: []telegramtest.Entity{{Type: "code", Offset: 10, Length: 5}},
		},
		{
			name:     "parts are numbered",
			m:        bridge.Message{Kind: bridge.KindReply, Text: "first half", Part: 1, Parts: 2},
			text:     "first half (1/2)",
			entities: []telegramtest.Entity{{Type: "italic", Offset: 11, Length: 5}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Sent(alice.ID))
			if _, err := a.SendText(ctx, addr(alice), tt.m); err != nil {
				t.Fatalf("SendText: %v", err)
			}
			sent := s.Sent(alice.ID)[before:]
			if len(sent) != 1 {
				t.Fatalf("chat received %d messages", len(sent))
			}
			if sent[0].Text != tt.text {
				t.Fatalf("chat shows %q, want %q", sent[0].Text, tt.text)
			}
			if !entitiesEqual(sent[0].Entities, tt.entities) {
				t.Fatalf("entities %+v, want %+v", sent[0].Entities, tt.entities)
			}
		})
	}
}

func entitiesEqual(a, b []telegramtest.Entity) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLongestTextFits(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{}))
	a := newAdapter(t, s, noPacing())
	ctx := deadline(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "hi"})
	l := a.Limits()
	// The bridge fills a relay up to MaxText-Overhead with pseudonym, ": " and text; with escaping
	// characters and the part counter of a split text it must still be accepted.
	from := "calm-otter"
	room := l.MaxText - l.Overhead - l.Len(from+": ")
	for _, text := range []string{strings.Repeat("<&", room/2), strings.Repeat("<\n", room/2)} { // one line; a quote
		m := bridge.Message{Kind: bridge.KindRelay, From: from, Text: text, Part: 12, Parts: 13}
		if _, err := a.SendText(ctx, addr(alice), m); err != nil {
			t.Fatalf("a text of MaxText-Overhead was refused: %v", err)
		}
	}
	notice := bridge.Message{Kind: bridge.KindNotice, Text: strings.Repeat("é", l.MaxText-l.Overhead), Part: 2, Parts: 2}
	if _, err := a.SendText(ctx, addr(alice), notice); err != nil {
		t.Fatalf("a notice of MaxText-Overhead was refused: %v", err)
	}
}

func TestSendImageInvoice(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{}))
	a := newAdapter(t, s, noPacing())
	ctx := deadline(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "/newroom"})

	bolt := "lnbcrt10u1p5xyzpp5" + strings.Repeat("q", 300)
	png, err := qrcode.Encode(strings.ToUpper("lightning:"+bolt), qrcode.Medium, 256)
	if err != nil {
		t.Fatal(err)
	}
	inv := &bridge.Invoice{ID: "abc", BOLT11: bolt, URI: "lightning:" + bolt, AmountSat: 1000, ExpiresAt: time.Now().Add(15 * time.Minute), QR: png}
	// Without a caption from the bridge, the adapter states the amount and the expiry itself.
	m := bridge.Message{Kind: bridge.KindInvoice, Code: bolt, Invoice: inv}
	if _, err := a.SendImage(ctx, addr(alice), bridge.Image{Name: "invoice.png", PNG: inv.QR}, m); err != nil {
		t.Fatalf("SendImage: %v", err)
	}
	sent := s.Sent(alice.ID)
	if len(sent) != 1 || sent[0].Method != "sendPhoto" {
		t.Fatalf("chat received %+v, want one photo", sent)
	}
	p := sent[0]
	if !bytes.Equal(p.Photo, png) || p.PhotoName != "invoice.png" {
		t.Fatalf("photo is not the QR PNG (%d bytes, %q)", len(p.Photo), p.PhotoName)
	}
	for _, want := range []string{"1000 sat", "Expires", bolt} {
		if !strings.Contains(p.Text, want) {
			t.Fatalf("caption %q lacks %q", p.Text, want)
		}
	}
	if strings.Count(p.Text, bolt) != 1 {
		t.Fatalf("caption repeats the BOLT11: %q", p.Text)
	}
	var code bool
	for _, e := range p.Entities {
		if e.Type == "code" && e.Length == len(bolt) && strings.HasSuffix(p.Text, bolt) {
			code = true
		}
	}
	if !code {
		t.Fatalf("BOLT11 is not in a code entity: %+v", p.Entities)
	}

	// A BOLT11 too long for a caption follows in a message of its own.
	long := "lnbc" + strings.Repeat("x", 1100)
	inv2 := *inv
	inv2.BOLT11 = long
	m.Invoice, m.Code = &inv2, long
	if _, err := a.SendImage(ctx, addr(alice), bridge.Image{Name: "invoice.png", PNG: png}, m); err != nil {
		t.Fatalf("SendImage with a long BOLT11: %v", err)
	}
	sent = s.Sent(alice.ID)
	if len(sent) != 3 || sent[1].Method != "sendPhoto" || strings.Contains(sent[1].Text, long) || sent[2].Text != long {
		t.Fatalf("long BOLT11: chat received %+v", sent[1:])
	}
}

func TestSendErrorsFollowTheContract(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{}))
	a := newAdapter(t, s, noPacing())
	ctx := deadline(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "hi"})
	s.Inject(telegramtest.Incoming{From: bob, Text: "hi"})
	s.Block(bob.ID)
	msg := bridge.Message{Kind: bridge.KindReply, Text: "x"}

	tests := []struct {
		name      string
		fail      func()
		to        bridge.Addr
		gone      bool
		rejected  bool
		retryWait time.Duration
	}{
		{name: "blocked user", to: addr(bob), gone: true},
		{name: "unknown chat", to: bridge.Addr{Platform: "telegram", User: "5", Chat: "5"}, gone: true},
		{name: "not a chat id", to: bridge.Addr{Platform: "telegram", User: "x", Chat: "x"}, rejected: true},
		{name: "429", to: addr(alice), retryWait: 3 * time.Second, fail: func() {
			s.FailNext("sendMessage", 1, 429, "Too Many Requests: retry after 3", 3)
		}},
		{name: "400", to: addr(alice), rejected: true, fail: func() {
			s.FailNext("sendMessage", 1, 400, "Bad Request: message is too long", 0)
		}},
		{name: "500 is transient", to: addr(alice), fail: func() {
			s.FailNext("sendMessage", 1, 500, "Internal Server Error", 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fail != nil {
				tt.fail()
			}
			_, err := a.SendText(ctx, tt.to, msg)
			if err == nil {
				t.Fatal("SendText succeeded")
			}
			var rl *bridge.RateLimitError
			isRL := errors.As(err, &rl)
			if errors.Is(err, bridge.ErrRecipientGone) != tt.gone || errors.Is(err, bridge.ErrRejected) != tt.rejected || isRL != (tt.retryWait > 0) {
				t.Fatalf("err = %v: gone %v rejected %v rate-limited %v", err, errors.Is(err, bridge.ErrRecipientGone), errors.Is(err, bridge.ErrRejected), isRL)
			}
			if isRL && rl.RetryAfter != tt.retryWait {
				t.Fatalf("RetryAfter = %v, want %v", rl.RetryAfter, tt.retryWait)
			}
		})
	}
	// The failures were consumed; the next send works.
	if _, err := a.SendText(ctx, addr(alice), msg); err != nil {
		t.Fatalf("SendText after the failures: %v", err)
	}
}

func TestPacingStaysUnderTheFakesLimits(t *testing.T) {
	lim := fakeLimits()
	s := telegramtest.New(t, telegramtest.WithLimits(lim))
	a := newAdapter(t, s, telegram.WithPacing(pacingFor(lim)))
	ctx := deadline(t)
	users := []telegramtest.User{alice, bob, carol}
	for _, u := range users {
		s.Inject(telegramtest.Incoming{From: u, Text: "hi"})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*40)
	for _, u := range users {
		wg.Go(func() {
			for i := range 40 {
				errs <- func() error {
					_, err := a.SendText(ctx, addr(u), bridge.Message{Kind: bridge.KindReply, Text: strconv.Itoa(i)})
					return err
				}()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a paced send failed: %v", err)
		}
	}
	if n := s.Stats().RateLimited; n != 0 {
		t.Fatalf("the fake answered 429 %d times to a paced adapter", n)
	}
}

func TestPacingConfig(t *testing.T) {
	tests := []struct {
		p     telegram.Pacing
		valid bool
	}{
		{telegram.Pacing{}, true},
		{telegram.Pacing{PerChat: 0.5, PerChatBurst: 1, Global: 25}, true},
		{telegram.Pacing{PerChat: -1}, false},
		{telegram.Pacing{GlobalBurst: -1}, false},
	}
	for _, tc := range tests {
		cfg := telegram.Config{Token: "1:x", Pacing: tc.p}
		if err := cfg.Validate(); (err == nil) != tc.valid {
			t.Errorf("Validate(%+v) = %v, valid %v", tc.p, err, tc.valid)
		}
		if _, err := telegram.New(cfg, slog.New(slog.DiscardHandler)); (err == nil) != tc.valid {
			t.Errorf("New with %+v: %v, valid %v", tc.p, err, tc.valid)
		}
	}
}
