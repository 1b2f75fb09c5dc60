package bridgetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kumo-chat/kumo/bridge"
)

// Deleting is a fake messenger that lets the bot delete messages (bridge.Deleter): its own always,
// the person's own when Theirs is set (Telegram private chats) and never otherwise (Discord DMs,
// where trying is an error).
type Deleting struct {
	*Platform
	batch  int
	theirs bool

	dmu     sync.Mutex
	failDel func(to bridge.Addr, ids []bridge.MessageID) error
	calls   int
}

// NewDeleting makes a fake platform whose DeleteMessages takes batch ids at a time.
func NewDeleting(name string, limits bridge.Limits, batch int, theirs bool) *Deleting {
	return &Deleting{Platform: New(name, limits), batch: batch, theirs: theirs}
}

// DeleteBatch implements bridge.Deleter.
func (d *Deleting) DeleteBatch() int { return d.batch }

// DeletesTheirs implements bridge.Deleter.
func (d *Deleting) DeletesTheirs(context.Context, bridge.Addr) bool { return d.theirs }

// SetDeleteFailure makes deletions fail: f is asked before every call; nil lets it through.
func (d *Deleting) SetDeleteFailure(f func(to bridge.Addr, ids []bridge.MessageID) error) {
	d.dmu.Lock()
	d.failDel = f
	d.dmu.Unlock()
}

// DeleteCalls counts DeleteMessages calls, failed ones included.
func (d *Deleting) DeleteCalls() int {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	return d.calls
}

// DeleteMessages implements bridge.Deleter: ids already gone count as deleted; more than batch ids,
// or the person's own where Theirs is false, are refused (ErrRejected) and nothing is deleted.
func (d *Deleting) DeleteMessages(_ context.Context, to bridge.Addr, ids []bridge.MessageID) error {
	d.dmu.Lock()
	d.calls++
	f := d.failDel
	d.dmu.Unlock()
	if len(ids) == 0 || len(ids) > d.batch {
		return fmt.Errorf("%d ids for a batch of %d: %w", len(ids), d.batch, bridge.ErrRejected)
	}
	if f != nil {
		if err := f(to, ids); err != nil {
			return err
		}
	}
	p := d.Platform
	p.mu.Lock()
	defer p.mu.Unlock()
	chat := p.chats[to.Chat]
	for _, s := range chat {
		if s.Own && !d.theirs && slices.Contains(ids, s.ID) {
			return fmt.Errorf("cannot delete the person's own message %s: %w", s.ID, bridge.ErrRejected)
		}
	}
	p.chats[to.Chat] = slices.DeleteFunc(chat, func(s Shown) bool { return slices.Contains(ids, s.ID) })
	p.wake()
	return nil
}

// DeleteAll deletes ids from the chat at to the way the bridge's wipe does: batches of DeleteBatch,
// the same batch again after a *bridge.RateLimitError's wait, any other error final. It returns how
// many rate limits it honoured. A rate limit without a wait is an error: retrying it at once would
// spin against the limit it reports.
func DeleteAll(ctx context.Context, d bridge.Deleter, to bridge.Addr, ids []bridge.MessageID) (limited int, err error) {
	for batch := range slices.Chunk(ids, d.DeleteBatch()) {
		for {
			err := d.DeleteMessages(ctx, to, batch)
			var rl *bridge.RateLimitError
			if !errors.As(err, &rl) {
				if err != nil {
					return limited, err
				}
				break
			}
			if rl.RetryAfter <= 0 {
				return limited, fmt.Errorf("a rate limit without a wait: %w", err)
			}
			limited++
			select {
			case <-time.After(rl.RetryAfter):
			case <-ctx.Done():
				return limited, ctx.Err()
			}
		}
	}
	return limited, nil
}
