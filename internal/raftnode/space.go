package raftnode

import (
	"sync/atomic"
	"time"

	"github.com/restored/restored/internal/diskfree"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultMinFreeMiB is the free space the raft directory's filesystem keeps
// in reserve when Config.MinFreeMiB is zero: the next log segment (64 MiB,
// allocated whole) and as much again for snapshots and metadata.
const DefaultMinFreeMiB = 128

// spaceEvery is how often the guard measures the free space.
const spaceEvery = 200 * time.Millisecond

// spaceGuard refuses writes while the raft directory's filesystem has less
// free than its reserve. raft itself must never meet ENOSPC: a leader whose
// log append fails steps down, and one that cannot save its term stops the
// process. Refused before raft, a write changes nothing, reads go on, and
// writes are taken again as soon as space is freed.
type spaceGuard struct {
	dir     string
	reserve uint64
	// free is the last measure (bytes available to this process).
	free atomic.Uint64
	stop chan struct{}
}

func newSpaceGuard(dir string, minFreeMiB int64) *spaceGuard {
	if minFreeMiB == 0 {
		minFreeMiB = DefaultMinFreeMiB
	}
	g := &spaceGuard{dir: dir, reserve: uint64(max(minFreeMiB, 0)) << 20, stop: make(chan struct{})}
	g.measure()
	if g.reserve > 0 {
		go g.watch()
	}
	return g
}

func (g *spaceGuard) watch() {
	t := time.NewTicker(spaceEvery)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.measure()
		}
	}
}

// measure takes the free space now and keeps it.
func (g *spaceGuard) measure() uint64 {
	free, err := diskfree.Bytes(g.dir)
	if err != nil {
		return g.free.Load() // keep the last measure
	}
	g.free.Store(free)
	return free
}

// Free is the free space last measured, in bytes.
func (g *spaceGuard) Free() uint64 { return g.free.Load() }

// admit says whether a write may be proposed now: nil, or a
// ResourceExhausted error naming the directory, the space and the reserve.
// Near the reserve it measures again rather than trust the last measure.
func (g *spaceGuard) admit() error {
	if g.reserve == 0 {
		return nil
	}
	free := g.free.Load()
	if free < 2*g.reserve {
		free = g.measure()
	}
	if free >= g.reserve {
		return nil
	}
	return status.Errorf(codes.ResourceExhausted,
		"this server's raft directory %s has %d MiB free, less than the %d MiB it keeps in reserve: writes are refused until space is freed there (nothing was written; reads go on)",
		g.dir, free>>20, g.reserve>>20)
}

func (g *spaceGuard) close() {
	if g.reserve > 0 {
		close(g.stop)
	}
}
