package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"sync"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/diskview"
	"github.com/restored/restored/internal/fileread"
	"github.com/restored/restored/internal/hypervisor"
	tunnelpkg "github.com/restored/restored/internal/tunnel"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// filesIdle is how long a recovery point's disks stay served after its
// last file request (browsing is many requests in a row).
const filesIdle = time.Minute

// filesLimit bounds one listing; downloads last as long as they stream.
const filesLimit = 30 * time.Second

// files serves file-level restore (FILES channels): a recovery point's
// disks served read-only by the driver while it is browsed, and a
// confined reader child (package fileread) for each request.
type files struct {
	hostID  string
	catalog *catalog
	srv     hypervisor.DiskServer // nil: the driver reads no filesystem
	runner  fileread.Runner
	log     *slog.Logger

	mu     sync.Mutex
	served map[string]*servedDisks
}

type servedDisks struct {
	// ready is closed once the disks are served (or failed: err).
	ready chan struct{}
	err   error
	disks hypervisor.ReadOnlyDisks
	refs  []fileread.DiskRef
	users int
	idle  *time.Timer
}

// acquire serves a recovery point's disks (or finds them served, or being
// served) for one request; release hands them back. Serving one recovery
// point holds up no other.
func (f *files) acquire(ctx context.Context, rpID string) (*servedDisks, error) {
	f.mu.Lock()
	if s, ok := f.served[rpID]; ok {
		s.users++
		if s.idle != nil {
			s.idle.Stop()
		}
		f.mu.Unlock()
		<-s.ready
		if s.err != nil {
			f.release(s)
			return nil, s.err
		}
		return s, nil
	}
	s := &servedDisks{ready: make(chan struct{}), users: 1}
	if f.served == nil {
		f.served = map[string]*servedDisks{}
	}
	f.served[rpID] = s
	f.mu.Unlock()
	s.disks, s.refs, s.err = f.serveDisks(ctx, rpID)
	f.mu.Lock()
	if s.err != nil {
		delete(f.served, rpID)
	} else {
		s.idle = time.AfterFunc(filesIdle, func() { f.expire(rpID, s) })
		s.idle.Stop()
	}
	f.mu.Unlock()
	close(s.ready)
	if s.err != nil {
		return nil, s.err
	}
	return s, nil
}

// serveDisks has the driver serve a recovery point's disks read-only.
func (f *files) serveDisks(ctx context.Context, rpID string) (hypervisor.ReadOnlyDisks, []fileread.DiskRef, error) {
	var none hypervisor.ReadOnlyDisks
	rp, ok := f.catalog.lookup(rpID)
	switch {
	case !ok:
		return none, nil, &fileread.Failure{Kind: fileread.KindNotFound, Message: fmt.Sprintf("recovery point %s is not in host %s's repository", rpID, f.hostID)}
	case !rp.Valid:
		return none, nil, &fileread.Failure{Kind: fileread.KindDamaged, Message: fmt.Sprintf("recovery point %s is invalid: %s", rpID, rp.Reason)}
	}
	var disks []hypervisor.Disk
	for _, d := range rp.Disks {
		disks = append(disks, hypervisor.Disk{Name: d.Name, Size: d.VirtualSize, Chain: d.Chain})
	}
	key := sha256.Sum256([]byte(rpID)) // a short, safe directory name
	rd, err := f.srv.ServeReadOnly(ctx, hex.EncodeToString(key[:8]), disks)
	if err != nil {
		return none, nil, &fileread.Failure{Kind: fileread.KindInternal, Message: fmt.Sprintf("serving the disks of recovery point %s: %v", rpID, err)}
	}
	var refs []fileread.DiskRef
	for _, d := range rp.Disks {
		refs = append(refs, fileread.DiskRef{Name: d.Name, Export: rd.Exports[d.Name]})
	}
	f.log.Info("serving a recovery point's disks for file restore", "recovery_point", rpID, "disks", len(refs))
	return rd, refs, nil
}

func (f *files) release(s *servedDisks) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.users--; s.users == 0 && s.idle != nil {
		s.idle.Reset(filesIdle)
	}
}

func (f *files) expire(rpID string, s *servedDisks) {
	f.mu.Lock()
	if f.served[rpID] != s || s.users > 0 {
		f.mu.Unlock()
		return
	}
	delete(f.served, rpID)
	f.mu.Unlock()
	s.disks.Stop()
	f.log.Info("stopped serving a recovery point's disks (idle)", "recovery_point", rpID)
}

// evict forgets a serving whose daemon no longer answers, and stops it.
func (f *files) evict(rpID string, s *servedDisks) {
	f.mu.Lock()
	if f.served[rpID] != s {
		f.mu.Unlock()
		return
	}
	delete(f.served, rpID)
	f.mu.Unlock()
	s.idle.Stop()
	s.disks.Stop()
	f.log.Warn("the disk server of a recovery point stopped answering; it is started again at the next request", "recovery_point", rpID)
}

// close stops serving every recovery point (the agent is stopping).
func (f *files) close() {
	f.mu.Lock()
	all := f.served
	f.served = nil
	f.mu.Unlock()
	for _, s := range all {
		<-s.ready
		if s.err == nil {
			s.idle.Stop()
			s.disks.Stop()
		}
	}
}

// sockets connects one socket per disk, for a child.
func (s *servedDisks) sockets() ([]*os.File, error) {
	var out []*os.File
	for range s.refs {
		c, err := net.Dial("unix", s.disks.Socket)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		fd, err := c.(*net.UnixConn).File()
		c.Close()
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, fd)
	}
	return out, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// serve answers one FILES channel.
func (f *files) serve(ctx context.Context, open *restorev1.TunnelOpen, c *tunnelpkg.Channel) {
	fail := func(err error) {
		fl, ok := err.(*fileread.Failure)
		if !ok {
			fl = &fileread.Failure{Kind: fileread.KindInternal, Message: err.Error()}
		}
		_ = c.CloseWith(fl.Wire(), fl.Kind == fileread.KindNotFound)
	}
	if f == nil || f.srv == nil {
		fail(&fileread.Failure{Kind: fileread.KindInternal, Message: fmt.Sprintf("host %s cannot read recovery points' files: its hypervisor lacks the files capability", f.hostIDOr())})
		return
	}
	req := fileread.Request{Op: fileread.Op(open.FileOp), Path: open.Path, Offset: int(open.Offset), Limit: int(open.Length)}
	if err := req.Check(); err != nil {
		fail(&fileread.Failure{Kind: fileread.KindBadPath, Message: err.Error()})
		return
	}
	s, err := f.acquire(ctx, open.RecoveryPointId)
	if err != nil {
		fail(err)
		return
	}
	defer f.release(s)
	req.Disks = s.refs
	socks, err := s.sockets()
	if err != nil {
		f.evict(open.RecoveryPointId, s) // its daemon is gone: the next request serves the disks again
		fail(fmt.Errorf("connecting to the disks of recovery point %s: %w", open.RecoveryPointId, err))
		return
	}
	defer closeAll(socks)
	cctx, cancel := c.Context(ctx)
	defer cancel()
	if req.Op == fileread.OpList || req.Op == fileread.OpStat {
		lctx, lcancel := context.WithTimeout(cctx, filesLimit)
		defer lcancel()
		var out bytes.Buffer
		if err := f.runner.Run(lctx, req, socks, &out); err != nil {
			fail(err)
			return
		}
		b, err := listingProto(req, out.Bytes())
		if err != nil {
			fail(err)
			return
		}
		_, _ = c.Write(b)
		_ = c.Close()
		return
	}
	if err := f.runner.Run(cctx, req, socks, c); err != nil {
		fail(err) // before the first byte: the server says why; after: the stream is cut
		return
	}
	_ = c.Close()
}

func (f *files) hostIDOr() string {
	if f == nil {
		return "this host"
	}
	return f.hostID
}

// listingProto turns a child's listing into the wire's, each entry with
// its path.
func listingProto(req fileread.Request, raw []byte) ([]byte, error) {
	var l fileread.Listing
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("the file reader's answer does not decode: %w", err)
	}
	dir := "/" + path.Clean("/" + req.Path)[1:]
	out := &restorev1.FileListing{Total: int32(l.Total)}
	for _, e := range l.Entries {
		x := &restorev1.FileEntry{Name: e.Name, Type: fileTypeAPI(e.Type), SizeBytes: e.Size, Mode: uint32(e.Mode.Perm()) | specialBits(e),
			LinkTarget: e.Target, UnsafeReason: e.Unsafe, Filesystem: e.FS}
		if !e.ModTime.IsZero() {
			x.ModifyTime = timestamppb.New(e.ModTime)
		}
		switch {
		case req.Op == fileread.OpStat:
			x.Path = dir
		case e.Unsafe == "" || e.FS != "":
			x.Path = path.Join(dir, e.Name)
		}
		out.Entries = append(out.Entries, x)
	}
	return proto.Marshal(out)
}

func specialBits(e diskview.Entry) uint32 {
	var m uint32
	if e.Mode&os.ModeSetuid != 0 {
		m |= 0o4000
	}
	if e.Mode&os.ModeSetgid != 0 {
		m |= 0o2000
	}
	if e.Mode&os.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

func fileTypeAPI(t diskview.Type) restorev1.FileType {
	switch t {
	case diskview.TypeFile:
		return restorev1.FileType_FILE_TYPE_FILE
	case diskview.TypeDir:
		return restorev1.FileType_FILE_TYPE_DIRECTORY
	case diskview.TypeSymlink:
		return restorev1.FileType_FILE_TYPE_SYMLINK
	}
	return restorev1.FileType_FILE_TYPE_OTHER
}
