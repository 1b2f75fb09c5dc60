package telegramtest_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

var alice = telegramtest.User{ID: 1001, FirstName: "Alice"}

// client is the real go-telegram/bot client pointed at the fake.
func client(t *testing.T, s *telegramtest.Server, token string, opts ...bot.Option) *bot.Bot {
	t.Helper()
	opts = append([]bot.Option{
		bot.WithServerURL(s.URL()),
		bot.WithHTTPClient(2*time.Second, &http.Client{Timeout: 5 * time.Second}),
	}, opts...)
	b, err := bot.New(token, opts...)
	if err != nil {
		t.Fatalf("bot.New: %v", err)
	}
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGetMeAndToken(t *testing.T) {
	s := telegramtest.New(t)
	b := client(t, s, s.Token()) // bot.New calls getMe
	me, err := b.GetMe(ctxT(t))
	if err != nil || me.Username != "kumo_test_bot" || !me.IsBot {
		t.Fatalf("GetMe = %+v, %v", me, err)
	}
	_, err = bot.New("123:wrong", bot.WithServerURL(s.URL()))
	if !errors.Is(err, bot.ErrorUnauthorized) {
		t.Fatalf("bot.New with a wrong token: %v, want unauthorized", err)
	}
}

func TestUpdatesInOrder(t *testing.T) {
	s := telegramtest.New(t)
	got := make(chan string, 10)
	b := client(t, s, s.Token(), bot.WithNotAsyncHandlers(), bot.WithDefaultHandler(func(_ context.Context, _ *bot.Bot, u *models.Update) {
		if u.Message.Chat.ID != alice.ID || u.Message.From.ID != alice.ID || u.Message.Chat.Type != models.ChatTypePrivate {
			t.Errorf("unexpected message %+v", u.Message)
		}
		got <- u.Message.Text
	}))
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan struct{})
	go func() { b.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	want := []string{"/start", "one", "two", "three"}
	for _, w := range want {
		s.Inject(telegramtest.Incoming{From: alice, Text: w})
	}
	for _, w := range want {
		select {
		case g := <-got:
			if g != w {
				t.Fatalf("got %q, want %q", g, w)
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %q: %v", w, ctx.Err())
		}
	}
	if err := s.WaitDelivered(ctx); err != nil {
		t.Fatalf("updates were not confirmed: %v", err)
	}
}

func TestSendMessageAnswers(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{}))
	b := client(t, s, s.Token(), bot.WithSkipGetMe())
	ctx := ctxT(t)
	bob := telegramtest.User{ID: 1002, FirstName: "Bob"}
	s.Inject(telegramtest.Incoming{From: alice, Text: "hi"})
	s.Inject(telegramtest.Incoming{From: bob, Text: "hi"})
	s.Block(bob.ID)

	tests := []struct {
		name    string
		chat    int64
		text    string
		mode    models.ParseMode
		wantErr error
		desc    string
	}{
		{name: "plain", chat: alice.ID, text: "hello *world*"},
		{name: "html", chat: alice.ID, text: "<b>a</b> &lt;", mode: models.ParseModeHTML},
		{name: "empty", chat: alice.ID, text: "", wantErr: bot.ErrorBadRequest, desc: "message text is empty"},
		{name: "malformed html", chat: alice.ID, text: "a < b", mode: models.ParseModeHTML, wantErr: bot.ErrorBadRequest, desc: "can't parse entities"},
		{name: "4096 after parsing", chat: alice.ID, text: strings.Repeat("&lt;", 4096), mode: models.ParseModeHTML},
		{name: "too long", chat: alice.ID, text: strings.Repeat("é", 4097), wantErr: bot.ErrorBadRequest, desc: "message is too long"},
		{name: "UTF-16 units count", chat: alice.ID, text: strings.Repeat("😀", 2049), wantErr: bot.ErrorBadRequest, desc: "message is too long"},
		{name: "unknown chat", chat: 99, text: "x", wantErr: bot.ErrorBadRequest, desc: "chat not found"},
		{name: "blocked", chat: bob.ID, text: "x", wantErr: bot.ErrorForbidden, desc: "bot was blocked by the user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Sent(tt.chat))
			m, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: tt.chat, Text: tt.text, ParseMode: tt.mode})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.desc) {
					t.Fatalf("err = %v, want %v %q", err, tt.wantErr, tt.desc)
				}
				if n := len(s.Sent(tt.chat)); n != before {
					t.Fatalf("a refused message was recorded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sent := s.Sent(tt.chat)
			if len(sent) != before+1 || sent[before].MessageID != m.ID || m.Chat.ID != tt.chat {
				t.Fatalf("recorded %+v, answered %+v", sent, m)
			}
			if sent[before].Raw != tt.text || string(sent[before].ParseMode) != string(tt.mode) {
				t.Fatalf("recorded %+v", sent[before])
			}
		})
	}
}

func TestSendPhoto(t *testing.T) {
	s := telegramtest.New(t)
	b := client(t, s, s.Token(), bot.WithSkipGetMe())
	ctx := ctxT(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "hi"})
	png := []byte("\x89PNG\r\n\x1a\nfake")
	m, err := b.SendPhoto(ctx, &bot.SendPhotoParams{
		ChatID: alice.ID, Photo: &models.InputFileUpload{Filename: "qr.png", Data: bytes.NewReader(png)},
		Caption: "pay <code>lnbc1</code>", ParseMode: models.ParseModeHTML,
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := s.Sent(alice.ID)
	if len(sent) != 1 || !bytes.Equal(sent[0].Photo, png) || sent[0].PhotoName != "qr.png" || sent[0].Text != "pay lnbc1" || len(m.Photo) == 0 {
		t.Fatalf("recorded %+v", sent)
	}
	if _, err := b.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: alice.ID, Photo: &models.InputFileString{Data: m.Photo[0].FileID}, Caption: strings.Repeat("x", 1025)}); !errors.Is(err, bot.ErrorBadRequest) {
		t.Fatalf("over-long caption: %v", err)
	}
}

func TestLimitsAndInjectedFailures(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{PerChat: 0.5, PerChatBurst: 2}))
	b := client(t, s, s.Token(), bot.WithSkipGetMe())
	ctx := ctxT(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "hi"})
	send := func() error {
		_, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "x"})
		return err
	}
	for i := range 2 {
		if err := send(); err != nil {
			t.Fatalf("send %d within the burst: %v", i, err)
		}
	}
	err := send()
	var tooMany *bot.TooManyRequestsError
	if !errors.As(err, &tooMany) || tooMany.RetryAfter < 1 || tooMany.RetryAfter > 2 {
		t.Fatalf("third send: %v, want 429 with retry_after 1..2", err)
	}
	if got := s.Stats().RateLimited; got != 1 {
		t.Fatalf("RateLimited = %d", got)
	}

	s.FailNext("sendMessage", 2, 500, "Internal Server Error", 0)
	s.FailNext("sendMessage", 1, 429, "Too Many Requests: retry after 7", 7)
	for i := range 2 {
		if err := send(); err == nil || !strings.Contains(err.Error(), "500") {
			t.Fatalf("injected failure %d: %v", i, err)
		}
	}
	if err := send(); !errors.As(err, &tooMany) || tooMany.RetryAfter != 7 {
		t.Fatalf("injected 429: %v", err)
	}
}
