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

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/nbd"
)

// Set is one snapshot's exports.
type Set struct {
	socket   string
	server   *nbd.Server
	listener net.Listener
	closers  []io.Closer
	sizes    map[string]int64
	extents  map[string][]hypervisor.Extent
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
	if c != nil {
		s.closers = append(s.closers, c)
	}
	return hypervisor.SnapshotDisk{Name: name, Source: source, Size: size, Export: export,
		URI: nbd.Target{Network: "unix", Address: s.socket, Export: export}.String()}, nil
}

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
