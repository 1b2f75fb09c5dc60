package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-telegram/bot"

	"github.com/kumo-chat/kumo/bridge"
)

var _ bridge.Deleter = (*Adapter)(nil)

// deleteBatch is how many ids deleteMessages takes.
const deleteBatch = 100

// DeleteBatch implements bridge.Deleter: deleteMessages takes 1-100 ids.
func (a *Adapter) DeleteBatch() int { return deleteBatch }

// DeletesTheirs implements bridge.Deleter: in a private chat (whose id is the user's) a bot may
// delete the user's messages too, within 48 hours.
func (a *Adapter) DeletesTheirs(_ context.Context, to bridge.Addr) bool {
	return to.Chat == to.User
}

// DeleteMessages implements bridge.Deleter with deleteMessages, which skips ids it cannot find. If
// Telegram refuses the batch because one of them can no longer be deleted (older than 48 hours), the
// rest are deleted one by one, so one old message does not keep the others in the chat; the call then
// reports ErrRejected.
func (a *Adapter) DeleteMessages(ctx context.Context, to bridge.Addr, ids []bridge.MessageID) error {
	chatID, err := chatOf(to)
	if err != nil {
		return err
	}
	nums := make([]int, 0, len(ids))
	for _, id := range ids {
		n, err := strconv.Atoi(string(id))
		if err != nil || n <= 0 {
			continue // never one of ours: nothing to delete
		}
		nums = append(nums, n)
	}
	if len(nums) == 0 {
		return nil
	}
	if len(nums) > deleteBatch {
		return fmt.Errorf("telegram: %w: %d ids in one deleteMessages", bridge.ErrRejected, len(nums))
	}
	err = a.paceDelete(ctx, func() error {
		_, err := a.bot.DeleteMessages(ctx, &bot.DeleteMessagesParams{ChatID: chatID, MessageIDs: nums})
		return err
	})
	if err == nil || !errors.Is(err, bridge.ErrRejected) || len(nums) == 1 {
		return err
	}
	var refused int
	for _, n := range nums {
		err := a.paceDelete(ctx, func() error {
			_, err := a.bot.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: chatID, MessageID: n})
			return err
		})
		switch {
		case err == nil || strings.Contains(err.Error(), "message to delete not found"):
		case errors.Is(err, bridge.ErrRejected):
			refused++
		default:
			return err // a 429 or an outage: the bridge tries the batch again
		}
	}
	if refused > 0 {
		return fmt.Errorf("telegram: %w: %d of %d messages can no longer be deleted", bridge.ErrRejected, refused, len(nums))
	}
	return nil
}

func (a *Adapter) paceDelete(ctx context.Context, call func() error) error {
	if a.deletes != nil {
		if err := a.deletes.Wait(ctx); err != nil {
			return fmt.Errorf("telegram: pacing: %w", err)
		}
	}
	return classify(call())
}
