// Package ratelimit owns the API's limits per caller: a token bucket per
// key (a bearer token's id, or a client address that keeps failing to
// authenticate), how long a refused caller should wait, and forgetting
// buckets nobody uses. It must not know about gRPC or HTTP: the API turns
// a refusal into RESOURCE_EXHAUSTED / 429 with Retry-After.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are a bucket's refill rate (per second) and size. A zero Rate
// turns limiting off.
type Limits struct {
	Rate  float64
	Burst int
}

// Limiter keeps one bucket per key.
type Limiter struct {
	lim Limits
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	calls   int
}

type bucket struct {
	l    *rate.Limiter
	last time.Time
}

// idle is how long an unused bucket is kept (a full one is the same as
// none, so forgetting it changes nothing once it has refilled).
const idle = 10 * time.Minute

// New returns a limiter with lim for every key (now: time.Now if nil).
func New(lim Limits, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	if lim.Burst < 1 {
		lim.Burst = 1
	}
	return &Limiter{lim: lim, now: now, buckets: map[string]*bucket{}}
}

// Allow takes one request from key's bucket. When it is empty it says how
// long until one is there; the request is not counted.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil || l.lim.Rate <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(rate.Limit(l.lim.Rate), l.lim.Burst)}
		l.buckets[key] = b
	}
	b.last = now
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets idle buckets, every thousand calls.
func (l *Limiter) sweep(now time.Time) {
	l.calls++
	if l.calls%1000 != 0 {
		return
	}
	for k, b := range l.buckets {
		if now.Sub(b.last) > idle {
			delete(l.buckets, k)
		}
	}
}

// Len is how many buckets are kept (for tests and metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
