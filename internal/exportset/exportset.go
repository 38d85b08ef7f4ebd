// Package exportset is a snapshot's disks served by the agent's own
// process (the drivers whose disks are not files QEMU can serve: VMware's
// datastore reads, Hyper-V's VHDX files): a read-only NBD server on a unix
// socket only this host reaches (the agent's gate serves it over TLS), and
// each disk's size and the extents the driver listed when it took the
// snapshot. It owns the export names and the socket's life; the drivers
// decide what each disk reads.
package exportset

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/nbd"
)

// Set is one snapshot's exports.
type Set struct {
	socket   string
	server   *nbd.Server
	listener net.Listener
	closers  []io.Closer
	// names are the disks in the order they were added.
	names   []string
	sizes   map[string]int64
	extents map[string][]hypervisor.Extent
}

// New is an empty set that will listen on socket.
func New(socket string, log *slog.Logger) *Set {
	return &Set{socket: socket, server: &nbd.Server{Exports: map[string]nbd.Export{}, Log: log},
		sizes: map[string]int64{}, extents: map[string][]hypervisor.Extent{}}
}

// Add serves a disk of size bytes read by readAt under a random export
// name, closing c (if any) when the set stops, and returns its
// hypervisor.SnapshotDisk.
func (s *Set) Add(name, source string, size int64, readAt func(ctx context.Context, p []byte, off int64) error, c io.Closer) (hypervisor.SnapshotDisk, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return hypervisor.SnapshotDisk{}, err
	}
	export := hex.EncodeToString(b)
	s.server.Exports[export] = nbd.Export{Size: size, ReadAt: readAt}
	s.sizes[name] = size
	s.names = append(s.names, name)
	if c != nil {
		s.closers = append(s.closers, c)
	}
	return hypervisor.SnapshotDisk{Name: name, Source: source, Size: size, Export: export,
		URI: nbd.Target{Network: "unix", Address: s.socket, Export: export}.String()}, nil
}

// Names are the set's disks in the order they were added.
func (s *Set) Names() []string { return s.names }

// SetExtents records a disk's extents to read.
func (s *Set) SetExtents(name string, e []hypervisor.Extent) { s.extents[name] = e }

// Serve starts listening; the set serves until Stop.
func (s *Set) Serve() error {
	if err := os.MkdirAll(filepath.Dir(s.socket), 0o700); err != nil {
		return err
	}
	_ = os.Remove(s.socket)
	l, err := net.Listen("unix", s.socket)
	if err != nil {
		return fmt.Errorf("the snapshot's NBD socket: %w", err)
	}
	s.listener = l
	go func() { _ = s.server.Serve(l) }()
	return nil
}

// Stop ends every client, the socket and the disks' files.
func (s *Set) Stop() {
	if s.listener != nil {
		s.listener.Close()
	}
	s.server.Close()
	for _, c := range s.closers {
		c.Close()
	}
	_ = os.Remove(s.socket)
}

// Page is a page of a disk's extents (hypervisor.Page).
func (s *Set) Page(id, disk string, offset int64, limit int) (hypervisor.Extents, error) {
	size, ok := s.sizes[disk]
	if !ok {
		return hypervisor.Extents{}, fmt.Errorf("snapshot %s has no disk %q", id, disk)
	}
	return hypervisor.Page(s.extents[disk], size, offset, limit), nil
}

// Served is what a Registry holds: a driver's record of a snapshot it
// serves, with its Set.
type Served interface {
	Stop()
	Page(id, disk string, offset int64, limit int) (hypervisor.Extents, error)
}

// Registry is the snapshots a driver serves in this run, by snapshot id.
// Its zero value is ready.
type Registry[S Served] struct {
	mu sync.Mutex
	m  map[string]S
}

// Put records a snapshot being served.
func (r *Registry[S]) Put(id string, s S) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]S{}
	}
	r.m[id] = s
}

// Take removes a snapshot and returns it (ok false: not served).
func (r *Registry[S]) Take(id string) (s S, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok = r.m[id]
	delete(r.m, id)
	return s, ok
}

// Serves says whether the snapshot is served.
func (r *Registry[S]) Serves(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[id]
	return ok
}

// Page is a page of a served snapshot's disk's extents.
func (r *Registry[S]) Page(id, disk string, offset int64, limit int) (hypervisor.Extents, error) {
	r.mu.Lock()
	s, ok := r.m[id]
	r.mu.Unlock()
	if !ok {
		return hypervisor.Extents{}, fmt.Errorf("snapshot %s is not served", id)
	}
	return s.Page(id, disk, offset, limit)
}

// StopAll stops and forgets every snapshot.
func (r *Registry[S]) StopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range r.m {
		s.Stop()
		delete(r.m, id)
	}
}
