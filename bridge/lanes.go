package bridge

import (
	"sync"
)

// lanes runs work for many keys at once while keeping each key's items in order: one goroutine per
// key that has work, gone as soon as its queue is empty. It is how every recipient gets messages in
// the order they were sent while one slow recipient never holds up another, and how each sender's
// messages are handled in order without holding up other senders.
//
// Two optional hooks shape a key's queue without breaking that order where it matters:
//   - urgent items (a person's answer to their own command) overtake the key's ordinary backlog, in
//     their own order, so that a busy room never makes "/help" wait behind its conversation;
//   - take lets one work call carry several ordinary items (coalescing a recipient's backlog into
//     one send); with nothing waiting behind an item it goes alone, at once.
type lanes[T any] struct {
	work  func(key string, batch []T, behind int) // behind: how many of the key's items wait after batch
	limit int                                     // items one key may have waiting; past it push refuses
	// urgent, when set, says which items go before the key's ordinary items.
	urgent func(T) bool
	// take, when set, says how many of the ordinary items waiting (in order, at least one) the next
	// work call gets; nil means one.
	take func(waiting []T) int

	mu      sync.Mutex
	queues  map[string]*lane[T]
	waiting int        // items queued over all keys, not yet handed to work
	idle    *sync.Cond // signalled whenever a lane ends
}

type lane[T any] struct {
	urgent, items []T
}

func (q *lane[T]) len() int { return len(q.urgent) + len(q.items) }

// newLanes runs work on one item at a time per key.
func newLanes[T any](limit int, work func(key string, item T)) *lanes[T] {
	return newBatchLanes(limit, func(key string, batch []T, _ int) {
		for _, it := range batch {
			work(key, it)
		}
	})
}

// newBatchLanes runs work on batches chosen by the take hook (set it before the first push).
func newBatchLanes[T any](limit int, work func(key string, batch []T, behind int)) *lanes[T] {
	l := &lanes[T]{work: work, limit: limit, queues: make(map[string]*lane[T])}
	l.idle = sync.NewCond(&l.mu)
	return l
}

// push queues item behind the key's earlier items (behind its earlier urgent items only, if it is
// urgent). It returns false, queueing nothing, when the key already has limit items waiting. head is
// the oldest ordinary item still waiting once item is queued (item itself when it is alone), and
// waiting how many items the key now has waiting, item included: what back-pressure looks at.
func (l *lanes[T]) push(key string, item T) (head T, waiting int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q, running := l.queues[key]
	if !running {
		q = &lane[T]{}
		l.queues[key] = q
	}
	if q.len() >= l.limit {
		if len(q.items) > 0 {
			head = q.items[0]
		}
		return head, q.len(), false
	}
	l.waiting++
	if l.urgent != nil && l.urgent(item) {
		q.urgent = append(q.urgent, item)
	} else {
		q.items = append(q.items, item)
	}
	if len(q.items) > 0 {
		head = q.items[0]
	} else {
		head = item
	}
	if !running {
		go l.drain(key, q)
	}
	return head, q.len(), true
}

// pushAlways queues item whatever the key's queue holds: for work that must not be lost (a wipe).
func (l *lanes[T]) pushAlways(key string, item T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q, running := l.queues[key]
	if !running {
		q = &lane[T]{}
		l.queues[key] = q
	}
	l.waiting++
	q.items = append(q.items, item)
	if !running {
		go l.drain(key, q)
	}
}

func (l *lanes[T]) drain(key string, q *lane[T]) {
	for {
		l.mu.Lock()
		var batch []T
		switch {
		case len(q.urgent) > 0:
			batch = []T{q.urgent[0]}
			q.urgent = popN(q.urgent, 1)
		case len(q.items) > 0:
			n := 1
			if l.take != nil {
				n = min(max(1, l.take(q.items)), len(q.items))
			}
			batch = append([]T(nil), q.items[:n]...)
			q.items = popN(q.items, n)
		default:
			delete(l.queues, key)
			l.idle.Broadcast()
			l.mu.Unlock()
			return
		}
		l.waiting -= len(batch)
		behind := q.len()
		l.mu.Unlock()
		l.work(key, batch, behind)
	}
}

// popN drops the first n items, clearing them so the backing array does not keep them alive.
func popN[T any](s []T, n int) []T {
	var zero T
	for i := range n {
		s[i] = zero
	}
	return s[n:]
}

// queued is how many items wait over all keys (not counting those being worked on).
func (l *lanes[T]) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting
}

// active is how many keys have work.
func (l *lanes[T]) active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queues)
}

// wait blocks until every lane is empty or stop is closed; it reports whether all lanes emptied.
func (l *lanes[T]) wait(stop <-chan struct{}) bool {
	done := make(chan struct{})
	go func() {
		// Wake the waiter below when stop closes, so it can give up.
		select {
		case <-stop:
			l.mu.Lock()
			l.idle.Broadcast()
			l.mu.Unlock()
		case <-done:
		}
	}()
	defer close(done)
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.queues) > 0 {
		select {
		case <-stop:
			return false
		default:
		}
		l.idle.Wait()
	}
	return true
}
