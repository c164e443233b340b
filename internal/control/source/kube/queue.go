package kube

import (
	"sync"

	"github.com/weft-mesh/weft/internal/control/model"
)

// queue holds the model keys whose objects must be computed again: a set,
// so that a burst of events on one object costs one conversion. Informer
// handlers add; the source's one worker takes everything at once.
type queue struct {
	mu   sync.Mutex
	keys map[model.Key]struct{}
	// wake has a value while keys is not empty.
	wake chan struct{}
}

func newQueue() *queue {
	return &queue{keys: map[model.Key]struct{}{}, wake: make(chan struct{}, 1)}
}

func (q *queue) add(keys ...model.Key) {
	if len(keys) == 0 {
		return
	}
	q.mu.Lock()
	for _, k := range keys {
		q.keys[k] = struct{}{}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns every key queued and empties the queue.
func (q *queue) take() map[model.Key]struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.keys
	q.keys = map[model.Key]struct{}{}
	return out
}
