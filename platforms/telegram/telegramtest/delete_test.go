package telegramtest_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"golang.org/x/time/rate"

	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// The fake deletes the way the Bot API documents it: in a private chat the bot's own messages and
// the user's, only within 48 hours; deleteMessages takes 1-100 ids and skips unknown ones, while
// deleteMessage reports them; and Shows is what the chat still holds.
func TestDeleteRules(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{}))
	b := client(t, s, s.Token())
	ctx := ctxT(t)
	s.Inject(telegramtest.Incoming{From: alice, Text: "hello"}) // id 1, the user's
	for _, text := range []string{"two", "three", "four"} {     // ids 2-4, the bot's
		if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		call    func() error
		wantErr string // the Bot API's description; "" for success
		left    []int  // ids the chat shows afterwards
	}{
		{"deleteMessage: the user's own message", func() error {
			_, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: alice.ID, MessageID: 1})
			return err
		}, "", []int{2, 3, 4}},
		{"deleteMessage: gone already", func() error {
			_, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: alice.ID, MessageID: 1})
			return err
		}, "Bad Request: message to delete not found", []int{2, 3, 4}},
		{"deleteMessages: none", func() error {
			_, err := b.DeleteMessages(ctx, &bot.DeleteMessagesParams{ChatID: alice.ID, MessageIDs: []int{}})
			return err
		}, "Bad Request: message identifiers are not specified", []int{2, 3, 4}},
		{"deleteMessages: 101", func() error {
			ids := make([]int, 101)
			for i := range ids {
				ids[i] = i + 1
			}
			_, err := b.DeleteMessages(ctx, &bot.DeleteMessagesParams{ChatID: alice.ID, MessageIDs: ids})
			return err
		}, "Bad Request: too many message identifiers specified", []int{2, 3, 4}},
		{"deleteMessages: unknown ids skipped", func() error {
			_, err := b.DeleteMessages(ctx, &bot.DeleteMessagesParams{ChatID: alice.ID, MessageIDs: []int{1, 2, 99}})
			return err
		}, "", []int{3, 4}},
		{"deleteMessages: past 48 hours", func() error {
			s.Backdate(alice.ID, 48*time.Hour)
			_, err := b.DeleteMessages(ctx, &bot.DeleteMessagesParams{ChatID: alice.ID, MessageIDs: []int{3, 4}})
			return err
		}, "Bad Request: message can't be deleted", []int{3, 4}},
		{"deleteMessage: past 48 hours", func() error {
			_, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: alice.ID, MessageID: 3})
			return err
		}, "Bad Request: message can't be deleted", []int{3, 4}},
		{"deleteMessage: a chat the bot never saw", func() error {
			_, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: 424242, MessageID: 3})
			return err
		}, "Bad Request: chat not found", []int{3, 4}},
	}
	for _, st := range steps {
		err := st.call()
		if st.wantErr == "" && err != nil || st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
			t.Fatalf("%s: err %v, want %q", st.name, err, st.wantErr)
		}
		var ids []int
		for _, m := range s.Shows(alice.ID) {
			ids = append(ids, m.MessageID)
		}
		if !equal(ids, st.left) {
			t.Fatalf("%s: chat shows %v, want %v", st.name, ids, st.left)
		}
	}
}

// A bot may not delete the user's messages in a group; and deletes past the fake's delete limit get
// 429 with retry_after.
func TestDeleteInGroupsAndRateLimit(t *testing.T) {
	s := telegramtest.New(t, telegramtest.WithLimits(telegramtest.Limits{Delete: rate.Every(time.Hour), DeleteBurst: 1}))
	b := client(t, s, s.Token())
	ctx := ctxT(t)
	group := telegramtest.Chat{ID: -100, Type: "group", Title: "g"}
	s.Inject(telegramtest.Incoming{From: alice, Chat: group, Text: "hi all"})
	_, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: group.ID, MessageID: 1})
	if err == nil || !strings.Contains(err.Error(), "message can't be deleted") {
		t.Fatalf("deleting a user's group message: %v", err)
	}
	_, err = b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: group.ID, MessageID: 1})
	var tooMany *bot.TooManyRequestsError
	if !errors.As(err, &tooMany) || tooMany.RetryAfter <= 0 {
		t.Fatalf("second delete within the limit: %v, want 429 with retry_after", err)
	}
}

func equal(a, b []int) bool { return slices.Equal(a, b) }
