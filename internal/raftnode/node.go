// Package raftnode runs hashicorp/raft for restored: the on-disk log
// (raft-wal, with its bolt metadata store closed here), file snapshots, the TCP transport, bootstrap of a lone
// server, and Apply with the FSM's typed results. It knows nothing about the
// API; callers validate and authorize before Apply.
package raftnode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Config configures a node.
type Config struct {
	// ID is this server's raft id.
	ID string
	// Dir holds raft.db and snapshots/.
	Dir string
	// Addr is the raft TCP address to listen on; Advertise, when set, is
	// the address other servers dial (else Addr, or the bound address).
	Addr, Advertise string
	// Bootstrap makes a node with no state a one-server cluster.
	Bootstrap bool
	// HeartbeatTimeout and ElectionTimeout; 500ms when zero.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout; 250ms when zero.
	LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is the number of entries between snapshots (default 8192).
	SnapshotThreshold uint64
	// LogOutput receives raft's own log lines; stderr when nil.
	LogOutput io.Writer
	// ServerTLS and ClientTLS make the transport mutual TLS (servers only);
	// both nil is plain TCP (unit tests of the FSM's callers only).
	ServerTLS, ClientTLS *tls.Config
	// MinFreeMiB is the free space Dir's filesystem keeps in reserve:
	// below it writes are refused before raft (0: DefaultMinFreeMiB;
	// negative: no reserve). It must hold a log segment and then some
	// (SegmentMiB + 16), since a new segment is allocated whole.
	MinFreeMiB int64
	// SegmentMiB is the size of the raft log's segment files, allocated
	// whole when one begins (0: raft-wal's 64).
	SegmentMiB int64
}

// Node is a running raft server.
type Node struct {
	Raft      *raft.Raft
	FSM       *fsm.FSM
	cfg       Config
	closeLog  func()
	transport *raft.NetworkTransport
	space     *spaceGuard
}

// Open starts raft. It fails at once when the directory is not writable or
// the address is in use.
func Open(cfg Config, f *fsm.FSM, log *slog.Logger) (*Node, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft directory %s: %w", cfg.Dir, err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = orDefault(cfg.HeartbeatTimeout, 500*time.Millisecond)
	rc.ElectionTimeout = orDefault(cfg.ElectionTimeout, 500*time.Millisecond)
	rc.LeaderLeaseTimeout = orDefault(cfg.LeaderLeaseTimeout, 250*time.Millisecond)
	rc.CommitTimeout = 20 * time.Millisecond
	rc.MaxAppendEntries = 512
	rc.BatchApplyCh = true
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
		rc.TrailingLogs = cfg.SnapshotThreshold
	}
	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: out})

	walDir := filepath.Join(cfg.Dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("raft log directory %s: %w", walDir, err)
	}
	// raft-wal v0.4.0's Close leaves its metadata database open (and
	// locked), so we own it and close it ourselves.
	meta := &metadb.BoltMetaDB{}
	segment := cfg.SegmentMiB
	if segment == 0 {
		segment = int64(wal.DefaultSegmentSize >> 20)
	}
	if cfg.MinFreeMiB > 0 && cfg.MinFreeMiB < segment+16 {
		return nil, fmt.Errorf("a raft reserve of %d MiB is too small: a log segment of %d MiB is allocated whole when one begins, so keep at least %d MiB free", cfg.MinFreeMiB, segment, segment+16)
	}
	logStore, err := wal.Open(walDir, wal.WithMetaStore(meta), wal.WithSegmentSize(int(segment<<20)))
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("open raft log %s: %w", walDir, err)
	}
	closeLog := func() {
		logStore.Close()
		meta.Close()
	}
	snaps, err := raft.NewFileSnapshotStore(cfg.Dir, 2, out)
	if err != nil {
		closeLog()
		return nil, fmt.Errorf("open raft snapshots in %s: %w", cfg.Dir, err)
	}
	addr, err := net.ResolveTCPAddr("tcp", cfg.Addr)
	if err != nil {
		closeLog()
		return nil, fmt.Errorf("raft address %q: %w", cfg.Addr, err)
	}
	var advertise net.Addr = addr
	if addr.Port == 0 || addr.IP.IsUnspecified() {
		advertise = nil // let the transport advertise the address it bound
	}
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			closeLog()
			return nil, fmt.Errorf("raft advertise address %q: %w", cfg.Advertise, err)
		}
		advertise = a
	}
	var transport *raft.NetworkTransport
	if cfg.ServerTLS != nil {
		stream, lerr := newTLSStream(cfg.Addr, cfg.ServerTLS, cfg.ClientTLS)
		if lerr != nil {
			closeLog()
			return nil, fmt.Errorf("listen for raft on %s: %w", cfg.Addr, lerr)
		}
		if advertise != nil {
			stream.advertise = advertise
		}
		transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 8, Timeout: 10 * time.Second,
			Logger: hclog.New(&hclog.LoggerOptions{Name: "raft-net", Level: hclog.Warn, Output: out}),
		})
	} else if transport, err = raft.NewTCPTransport(cfg.Addr, advertise, 8, 10*time.Second, out); err != nil {
		closeLog()
		return nil, fmt.Errorf("listen for raft on %s: %w", cfg.Addr, err)
	}
	hasState, err := raft.HasExistingState(logStore, logStore, snaps)
	if err != nil {
		transport.Close()
		closeLog()
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	// Keep recent entries in memory: followers apply what they just stored
	// without reading it back from bolt.
	cached, err := raft.NewLogCache(4096, logStore)
	if err != nil {
		transport.Close()
		closeLog()
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, f, cached, logStore, snaps, transport)
	if err != nil {
		transport.Close()
		closeLog()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n := &Node{Raft: r, FSM: f, cfg: cfg, closeLog: closeLog, transport: transport, space: newSpaceGuard(cfg.Dir, cfg.MinFreeMiB)}
	if cfg.Bootstrap && !hasState {
		log.Info("bootstrapping a new single-server cluster", "id", cfg.ID, "raft_addr", cfg.Addr)
		boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: transport.LocalAddr()}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Close()
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	return n, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Apply replicates one command and returns what the FSM produced. A status
// error from the FSM is returned unchanged; raft failures become Unavailable.
func (n *Node) Apply(t raftv1.CommandType, msg proto.Message, timeout time.Duration) (proto.Message, error) {
	return n.ApplyAs(t, msg, timeout, nil)
}

// ApplyAs is Apply with who proposes the entry (nil: this server itself),
// for the audit record every server keeps of it.
func (n *Node) ApplyAs(t raftv1.CommandType, msg proto.Message, timeout time.Duration, ac *raftv1.AuditContext) (proto.Message, error) {
	if ac == nil {
		ac = &raftv1.AuditContext{Caller: "system:" + n.cfg.ID, Role: "system", ServerId: n.cfg.ID, Time: timestamppb.Now()}
	}
	data, err := fsm.EncodeAs(t, msg, ac)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := n.space.admit(); err != nil {
		return nil, err
	}
	f := n.Raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, status.Errorf(codes.Unavailable, "this server lost leadership while writing; retry: %v", err)
		}
		return nil, status.Errorf(codes.Unavailable, "raft apply: %v", err)
	}
	res, ok := f.Response().(*fsm.Result)
	if !ok {
		return nil, status.Errorf(codes.Internal, "unexpected raft response %T", f.Response())
	}
	return res.Value, res.Err
}

// FreeBytes is the free space of the raft directory's filesystem, last
// measured.
func (n *Node) FreeBytes() uint64 { return n.space.Free() }

// Addr is the raft address this node advertises.
func (n *Node) Addr() string { return string(n.transport.LocalAddr()) }

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.Raft.State() == raft.Leader }

// Leader returns the leader's id and raft address, empty when unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.Raft.LeaderWithID()
	return string(i), string(a)
}

// AppliedIndex is the index of the last entry applied, counting raft's own
// entries (no-ops, configuration changes) that never reach the FSM.
func (n *Node) AppliedIndex() uint64 { return n.Raft.AppliedIndex() }

// CommitIndex is the raft commit index as this node knows it.
func (n *Node) CommitIndex() uint64 {
	v, _ := strconv.ParseUint(n.Raft.Stats()["commit_index"], 10, 64)
	return v
}

// AddVoter adds a server to the configuration (leader only).
func (n *Node) AddVoter(id, addr string, timeout time.Duration) error {
	cfg := n.Raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return err
	}
	for _, s := range cfg.Configuration().Servers {
		if s.ID == raft.ServerID(id) && s.Address == raft.ServerAddress(addr) {
			return nil
		}
		if s.ID == raft.ServerID(id) || s.Address == raft.ServerAddress(addr) {
			if err := n.Raft.RemoveServer(s.ID, 0, timeout).Error(); err != nil {
				return fmt.Errorf("remove stale server %s: %w", s.ID, err)
			}
		}
	}
	return n.Raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout).Error()
}

// Close shuts raft down and closes its files.
func (n *Node) Close() error {
	n.space.close()
	err := n.Raft.Shutdown().Error()
	n.transport.Close()
	n.closeLog()
	return err
}
