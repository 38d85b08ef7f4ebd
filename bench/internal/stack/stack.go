// Package stack starts what the benchmarks measure: one restored and one
// hypervisor agent as processes on the local libvirtd, a tenant "bench" with
// a partner token, and a repository of recovery points of asset "a".
package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testimage"
)

// RecoveryPoint is a recovery point to put in the repository: a copy of From
// (sparse), or an empty sparse disk of Size bytes.
type RecoveryPoint struct {
	ID   string
	Size int64
	From string
}

// HostID is the agent's host id.
const HostID = "bench-host"

// Stack is a running restored + agent.
type Stack struct {
	Dir     string
	Server  *testcluster.Proc
	Partner context.Context // carries the partner token
	// Admin carries the admin token.
	Admin context.Context
	// CACert is the cluster CA's certificate (the HTTPS server's chains to it).
	CACert  string
	cluster *testcluster.Cluster
	agent   *exec.Cmd
}

// Start builds the binaries into dir, starts restored and the agent (with
// extra agent flags), fills the repository and waits until the agent
// reported every recovery point.
func Start(ctx context.Context, dir string, rps []RecoveryPoint, agentFlags ...string) (*Stack, error) {
	restoredBin, err := testcluster.BuildCommand(".", dir, "restored")
	if err != nil {
		return nil, err
	}
	agentBin, err := testcluster.BuildCommand(".", dir, "hypervisor-agent")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "servers"), 0o755); err != nil {
		return nil, err
	}
	c, err := testcluster.Start(ctx, testcluster.Options{Binary: restoredBin, Dir: filepath.Join(dir, "servers"), N: 1, Args: []string{"--scheduler-interval", "200ms"}})
	if err != nil {
		return nil, err
	}
	s := &Stack{Dir: dir, Server: c.Procs[0], cluster: c, CACert: c.CACert}
	fail := func(err error) (*Stack, error) { s.Stop(); return nil, err }
	if err := c.CreateTenant(ctx, s.Server, "bench"); err != nil {
		return fail(err)
	}
	partnerSecret, err := c.MintToken(ctx, s.Server, "bench", "partner")
	if err != nil {
		return fail(err)
	}
	joinToken, fingerprint, err := c.JoinToken(ctx, s.Server, HostID)
	if err != nil {
		return fail(err)
	}
	repo := filepath.Join(dir, "repo")
	for _, rp := range rps {
		if _, err := testimage.AddRecoveryPoint(repo, testimage.RecoveryPoint{ID: rp.ID, Tenant: "bench", Asset: "a", From: rp.From, Size: rp.Size}); err != nil {
			return fail(err)
		}
	}
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	args := append([]string{"--server", s.Server.GRPC, "--ca-fingerprint", fingerprint, "--host-id", HostID, "--join-token", joinToken,
		"--repository", repo, "--work-dir", filepath.Join(dir, "work"), "--reserve-memory-mib", "0"}, agentFlags...)
	s.agent = exec.Command(agentBin, args...)
	s.agent.Stdout, s.agent.Stderr = logf, logf
	s.agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.agent.Start(); err != nil {
		return fail(err)
	}
	s.Partner = testcluster.Ctx(ctx, partnerSecret)
	s.Admin = testcluster.Ctx(ctx, c.Token)
	points := restorev1.NewRecoveryPointServiceClient(s.Server.Conn())
	for deadline := time.Now().Add(time.Minute); ; {
		l, err := points.ListRecoveryPoints(s.Partner, &restorev1.ListRecoveryPointsRequest{})
		if err == nil && len(l.RecoveryPoints) == len(rps) {
			return s, nil
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the agent did not report its recovery points: %v", err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// AssignGuest assigns the domain name to tenant bench once the agent
// reports it.
func (s *Stack) AssignGuest(ctx context.Context, name string) (*restorev1.Guest, error) {
	return s.cluster.AssignGuest(ctx, s.Server, HostID, name, "bench", func() { _ = s.agent.Process.Signal(syscall.SIGHUP) })
}

// Stop kills the agent (by PID) and stops restored.
func (s *Stack) Stop() {
	if s.agent != nil && s.agent.Process != nil {
		_ = s.agent.Process.Kill()
		_ = s.agent.Wait()
		s.agent = nil
	}
	s.cluster.Stop()
}
