package agent

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// servers is what the agent knows of the control plane's servers: the
// ones its flags name (seeds) and the ones the cluster told it of, kept in
// <work-dir>/servers.json so that the next run finds the cluster even when
// the servers its flags name are gone. It orders them as this host prefers
// them: by rendezvous hashing of the host id over the cluster's list, so
// every server takes its share of the hosts and a host moves only when its
// server goes away (and back when it returns); the seeds the cluster did
// not name come last.
type servers struct {
	hostID string
	path   string
	log    *slog.Logger
	seeds  []string

	mu    sync.Mutex
	known []string
}

func newServers(hostID, workDir string, seeds []string, log *slog.Logger) *servers {
	s := &servers{hostID: hostID, path: filepath.Join(workDir, "servers.json"), seeds: seeds, log: log}
	if b, err := os.ReadFile(s.path); err == nil {
		var known []string
		if json.Unmarshal(b, &known) == nil {
			s.known = known
		}
	}
	return s
}

// learn takes the cluster's list of servers (an empty list changes
// nothing: a server that answered is one of them).
func (s *servers) learn(addrs []string) {
	if len(addrs) == 0 {
		return
	}
	next := slices.Clone(addrs)
	slices.Sort(next)
	next = slices.Compact(next)
	s.mu.Lock()
	same := slices.Equal(s.known, next)
	s.known = next
	s.mu.Unlock()
	if same {
		return
	}
	s.log.Info("the cluster's servers", "servers", next)
	b, _ := json.Marshal(next)
	if err := os.WriteFile(s.path+".tmp", b, 0o600); err == nil {
		err = os.Rename(s.path+".tmp", s.path)
		if err != nil {
			s.log.Warn("keeping the server list failed", "err", err)
		}
	}
}

// order is every server this host may use, the one it prefers first.
func (s *servers) order() []string {
	s.mu.Lock()
	known := slices.Clone(s.known)
	s.mu.Unlock()
	slices.SortStableFunc(known, func(a, b string) int { return cmp.Compare(s.score(b), s.score(a)) })
	out := known
	for _, seed := range s.seeds {
		if !slices.Contains(out, seed) {
			out = append(out, seed)
		}
	}
	return out
}

// score is the rendezvous weight of a server for this host.
func (s *servers) score(addr string) uint64 {
	h := sha256.Sum256([]byte(s.hostID + "\x00" + addr))
	return binary.BigEndian.Uint64(h[:8])
}

// PreferredOrder is the order in which the agent of hostID prefers the
// cluster's servers (their gRPC addresses): the first is the one it uses
// whenever it serves.
func PreferredOrder(hostID string, cluster []string) []string {
	s := &servers{hostID: hostID}
	s.known = slices.Compact(slices.Sorted(slices.Values(cluster)))
	return s.order()
}
