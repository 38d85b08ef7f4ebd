package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestABucketRefusesPastItsBurstSaysWhenToRetryAndRefills(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	l := New(Limits{Rate: 2, Burst: 3}, c.now)
	for i := range 3 {
		if ok, _ := l.Allow("tok-a"); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.Allow("tok-a")
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("past the burst: ok=%v retry after %v (want ≤ 500ms at 2/s)", ok, wait)
	}
	if ok, _ := l.Allow("tok-b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	c.t = c.t.Add(wait)
	if ok, _ := l.Allow("tok-a"); !ok {
		t.Fatal("not refilled after the wait it named")
	}
	// A refused request is not counted: refusals do not push the wait out.
	_, w1 := l.Allow("tok-a")
	_, w2 := l.Allow("tok-a")
	if w2 != w1 {
		t.Fatalf("refusals grew the wait: %v then %v", w1, w2)
	}
}

func TestZeroRateIsNoLimitAndIdleBucketsAreForgotten(t *testing.T) {
	var none *Limiter
	if ok, _ := none.Allow("x"); !ok {
		t.Fatal("a nil limiter refused")
	}
	if ok, _ := New(Limits{}, nil).Allow("x"); !ok {
		t.Fatal("rate 0 refused")
	}
	c := &clock{t: time.Now()}
	l := New(Limits{Rate: 1, Burst: 1}, c.now)
	for i := range 999 {
		l.Allow(fmt.Sprint("k", i))
	}
	c.t = c.t.Add(idle + time.Second)
	l.Allow("fresh") // the 1000th call sweeps
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets kept after they went idle, want 1", n)
	}
}
