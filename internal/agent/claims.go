package agent

import (
	"context"
	"sort"
	"sync"
	"time"
)

// claims are the ids a part of the agent is working on, one worker per id:
// a second reconcile pass never starts the same work twice. Each part has
// its own.
type claims struct {
	mu   sync.Mutex
	busy map[string]context.CancelFunc
	wg   sync.WaitGroup
}

func newClaims() *claims { return &claims{busy: map[string]context.CancelFunc{}} }

// goWork runs fn for id in its own goroutine with a context that cancel
// ends, unless id is being worked on already; it says whether it started.
func (c *claims) goWork(ctx context.Context, id string, fn func(ctx context.Context)) bool {
	c.mu.Lock()
	if _, busy := c.busy[id]; busy {
		c.mu.Unlock()
		return false
	}
	wctx, cancel := context.WithCancel(ctx)
	c.busy[id] = cancel
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer c.release(id)
		fn(wctx)
	}()
	return true
}

// preempt stops the work on id and, in the background, runs fn for id
// once that work has ended (trying for up to 30 s: cancelled work ends
// within moments). It says, when it gives up, through gaveUp (may be nil).
func (c *claims) preempt(ctx context.Context, id string, fn func(ctx context.Context), gaveUp func()) {
	c.cancel(id)
	go func() {
		for range 300 {
			if c.goWork(ctx, id, fn) || ctx.Err() != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		if gaveUp != nil {
			gaveUp()
		}
	}()
}

// cancel stops the work on id (a boot being verified), if any.
func (c *claims) cancel(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stop, ok := c.busy[id]; ok {
		stop()
	}
}

func (c *claims) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stop, ok := c.busy[id]; ok {
		stop()
		delete(c.busy, id)
	}
}

// wait waits until no work is running (tests).
func (c *claims) wait() { c.wg.Wait() }

// drain waits up to d for the work in flight to end, and returns the ids
// whose work had not ended by then (sorted).
func (c *claims) drain(d time.Duration) []string {
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(d):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.busy))
	for id := range c.busy {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
