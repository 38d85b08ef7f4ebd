package agent

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/storage"
)

// countingServer serves nothing but counts how often it was asked, and how
// often stopped.
type countingServer struct {
	served, stopped atomic.Int32
	delay           time.Duration
}

func (c *countingServer) ServeReadOnly(ctx context.Context, key string, disks []hypervisor.Disk) (hypervisor.ReadOnlyDisks, error) {
	c.served.Add(1)
	time.Sleep(c.delay)
	return hypervisor.ReadOnlyDisks{Socket: "/nonexistent", Exports: map[string]string{"vda": "vda"}, Stop: func() { c.stopped.Add(1) }}, nil
}

func filesWith(srv hypervisor.DiskServer, ids ...string) *files {
	var rps []storage.RecoveryPoint
	for _, id := range ids {
		rps = append(rps, storage.RecoveryPoint{ID: id, Tenant: "acme", Valid: true, Disks: []storage.ResolvedDisk{{Disk: storage.Disk{Name: "vda", VirtualSize: 1 << 20}}}})
	}
	f := &files{hostID: "h", catalog: &catalog{}, srv: srv, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.catalog.replace(storage.NewIndex(rps))
	return f
}

// Requests that arrive together for one recovery point share one serving
// of its disks; one not in the repository is refused; close stops what is
// served.
func TestFilesServeARecoveryPointOnceForRequestsTogether(t *testing.T) {
	srv := &countingServer{delay: 200 * time.Millisecond}
	f := filesWith(srv, "rp-1")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := f.acquire(context.Background(), "rp-1")
			if err != nil {
				t.Error(err)
				return
			}
			f.release(s)
		}()
	}
	wg.Wait()
	if n := srv.served.Load(); n != 1 {
		t.Fatalf("rp-1 served %d times for 8 requests together, want 1", n)
	}
	if _, err := f.acquire(context.Background(), "rp-missing"); err == nil {
		t.Fatal("a recovery point not in the repository was served")
	}
	f.close()
	if n := srv.stopped.Load(); n != 1 {
		t.Fatalf("close stopped %d servings, want 1", n)
	}
}

// A serving whose daemon stopped answering is served again at the next
// request, not kept.
func TestFilesServeAgainWhenTheDaemonIsGone(t *testing.T) {
	srv := &countingServer{}
	f := filesWith(srv, "rp-1")
	s, err := f.acquire(context.Background(), "rp-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.sockets(); err == nil {
		t.Fatal("a socket to a daemon that is not there")
	}
	f.evict("rp-1", s)
	f.release(s)
	s2, err := f.acquire(context.Background(), "rp-1")
	if err != nil {
		t.Fatal(err)
	}
	f.release(s2)
	if srv.served.Load() != 2 || srv.stopped.Load() != 1 {
		t.Fatalf("served %d, stopped %d; want 2 and 1", srv.served.Load(), srv.stopped.Load())
	}
	f.close()
}
