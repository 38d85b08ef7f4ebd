package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/raftnode"
	"github.com/restored/restored/internal/store"
)

// transportCost measures what mutual TLS costs raft: the same three-node
// cluster (in this process, on loopback, each node with its real on-disk
// log and the real FSM) over plain TCP and over the TLS stream layer
// restored runs, the same writes at 1 and 64 concurrent writers; it prints
// both and the ratio. The plain transport exists only for this baseline:
// restored itself never runs raft without TLS.
func transportCost(ctx context.Context, d time.Duration) error {
	dir, err := os.MkdirTemp("", "bench-raft-tls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("raft transport: 3 in-process nodes on loopback, %s per phase, writes applied on the leader\n", d)
	fmt.Printf("%-8s %-10s %12s %10s %10s %8s %12s\n", "clients", "transport", "writes/s", "p50", "p99", "errors", "vs plain")
	plain := map[int]result{}
	for _, withTLS := range []bool{false, true} {
		name := "plain"
		if withTLS {
			name = "mTLS 1.3"
		}
		nodes, err := inProcessCluster(filepath.Join(dir, name), withTLS)
		if err != nil {
			return err
		}
		leader := nodes[0]
		for _, clients := range []int{1, 64} {
			r := load(ctx, clients, d, func(_ context.Context, c, i int) error {
				_, err := leader.Apply(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT,
					&raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: fmt.Sprintf("t%d-%d-%d", clients, c, i)}}, 10*time.Second)
				return err
			})
			ratio := "1.00x"
			if withTLS {
				ratio = fmt.Sprintf("%.2fx", r.rate()/plain[clients].rate())
			} else {
				plain[clients] = r
			}
			fmt.Printf("%-8d %-10s %12.0f %10s %10s %8d %12s\n", clients, name, r.rate(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors, ratio)
		}
		for _, n := range nodes {
			_ = n.Close()
		}
	}
	fmt.Printf("target: TLS costs <= 10%% of raft write throughput (vs plain >= 0.90x)\n\n")
	return nil
}

// inProcessCluster starts three raft nodes; the first bootstraps and leads.
func inProcessCluster(dir string, withTLS bool) ([]*raftnode.Node, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var ca *pki.CA
	if withTLS {
		var err error
		if ca, err = pki.NewCA("bench", time.Now()); err != nil {
			return nil, err
		}
	}
	var nodes []*raftnode.Node
	fail := func(err error) ([]*raftnode.Node, error) {
		for _, n := range nodes {
			_ = n.Close()
		}
		return nil, err
	}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		addr := l.Addr().String()
		l.Close()
		cfg := raftnode.Config{ID: id, Dir: filepath.Join(dir, id), Addr: addr, Bootstrap: i == 1, LogOutput: io.Discard}
		if withTLS {
			keeper, err := serverKeeper(ca, id)
			if err != nil {
				return fail(err)
			}
			servers := pki.Peer{Roles: []pki.Role{pki.RoleServer}}
			cfg.ServerTLS = pki.ServerConfig(keeper, ca.Pool(), servers)
			cfg.ClientTLS = pki.ClientConfig(ca.Pool(), keeper, "", servers)
		}
		st, err := store.New()
		if err != nil {
			return fail(err)
		}
		n, err := raftnode.Open(cfg, fsm.New(st, quiet), quiet)
		if err != nil {
			return fail(err)
		}
		nodes = append(nodes, n)
		if i == 1 {
			for deadline := time.Now().Add(10 * time.Second); !n.IsLeader(); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					return fail(fmt.Errorf("the first node did not become leader"))
				}
			}
			continue
		}
		if err := nodes[0].AddVoter(id, n.Addr(), 10*time.Second); err != nil {
			return fail(err)
		}
	}
	// Every node has caught up before writes are timed.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		caught := true
		for _, n := range nodes {
			caught = caught && n.AppliedIndex() >= nodes[0].CommitIndex()
		}
		if caught {
			return nodes, nil
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the followers did not catch up"))
		}
	}
}

// serverKeeper issues a server certificate for id.
func serverKeeper(ca *pki.CA, id string) (*pki.Keeper, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(pki.Request{Identity: pki.Identity{Role: pki.RoleServer, Name: id}, Public: key.Public(),
		Hosts: []string{"127.0.0.1"}, Lifetime: pki.ServerLifetime, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return pki.NewKeeper(pki.EncodeCert(cert), keyPEM)
}
