package bridge

import (
	"sync"
)

// lanes runs work for many keys at once while keeping each key's items in order: one goroutine per
// key that has work, gone as soon as its queue is empty. It is how every recipient gets messages in
// the order they were sent while one slow recipient never holds up another, and how each sender's
// messages are handled in order without holding up other senders.
type lanes[T any] struct {
	work  func(key string, item T)
	limit int // items one key may have waiting; past it push refuses

	mu     sync.Mutex
	queues map[string]*lane[T]
	idle   *sync.Cond // signalled whenever a lane ends
}

type lane[T any] struct {
	items []T
}

func newLanes[T any](limit int, work func(key string, item T)) *lanes[T] {
	l := &lanes[T]{work: work, limit: limit, queues: make(map[string]*lane[T])}
	l.idle = sync.NewCond(&l.mu)
	return l
}

// push queues item behind the key's earlier items. It returns false, queueing nothing, when the key
// already has limit items waiting.
func (l *lanes[T]) push(key string, item T) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	q, running := l.queues[key]
	if !running {
		q = &lane[T]{}
		l.queues[key] = q
	}
	if len(q.items) >= l.limit {
		return false
	}
	q.items = append(q.items, item)
	if !running {
		go l.drain(key, q)
	}
	return true
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
	q.items = append(q.items, item)
	if !running {
		go l.drain(key, q)
	}
}

func (l *lanes[T]) drain(key string, q *lane[T]) {
	for {
		l.mu.Lock()
		if len(q.items) == 0 {
			delete(l.queues, key)
			l.idle.Broadcast()
			l.mu.Unlock()
			return
		}
		item := q.items[0]
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		l.mu.Unlock()
		l.work(key, item)
	}
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
