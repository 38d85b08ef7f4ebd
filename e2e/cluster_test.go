package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Three restored processes on loopback: a write through a follower succeeds;
// kill -9 the leader while clients keep writing through followers; a new
// leader is elected; every acknowledged write is still there; the killed
// server comes back with its data dir and catches up.
func TestClusterSurvivesLeaderDeathWithNothingAcknowledgedLost(t *testing.T) {
	dir := t.TempDir()
	bin, err := testcluster.Build("..", dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := testcluster.Start(ctx, testcluster.Options{Binary: bin, Dir: dir, N: 3, Args: []string{"--scheduler-interval", "200ms", "--token-use-interval", "300ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range c.Procs {
				b, _ := os.ReadFile(p.LogPath)
				t.Logf("---- %s log ----\n%s", p.ID, b)
			}
		}
	})
	admin := func(p *testcluster.Proc) restorev1.AdminServiceClient {
		return restorev1.NewAdminServiceClient(p.Conn())
	}
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 10*time.Second) }

	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	follower := c.Followers(leader)[0]

	// Admin writes through a follower are forwarded to the leader.
	cctx, done := call()
	if _, err := admin(follower).CreateTenant(testcluster.Ctx(cctx, c.Token), &restorev1.CreateTenantRequest{Id: "acme"}); err != nil {
		t.Fatalf("create tenant through follower %s: %v", follower.ID, err)
	}
	tok, err := admin(follower).CreateToken(testcluster.Ctx(cctx, c.Token), &restorev1.CreateTokenRequest{Tenant: "acme", Role: "partner"})
	if err != nil {
		t.Fatal(err)
	}
	done()
	// An agent enrolls and registers through a follower (which vouches for
	// its certificate to the leader) and reports a recovery point.
	agentConn, err := c.AgentConn(ctx, follower, "kvm-01", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer agentConn.Close()
	agent := restorev1.NewAgentServiceClient(agentConn)
	actx := ctx
	if _, err := agent.Register(actx, &restorev1.RegisterRequest{ProtocolVersion: version.AgentProtocol, HostId: "kvm-01",
		Capacity: &restorev1.Capacity{Vcpus: 64, MemoryMib: 1 << 20}}); err != nil {
		t.Fatalf("register through follower: %v", err)
	}
	if _, err := agent.ReportRecoveryPoints(actx, &restorev1.ReportRecoveryPointsRequest{ProtocolVersion: version.AgentProtocol, HostId: "kvm-01",
		RecoveryPoints: []*restorev1.RecoveryPoint{rp("rp-1", "acme", "web")}}); err != nil {
		t.Fatal(err)
	}

	// Writers create restores through every follower, before, during and after the kill.
	var (
		mu    sync.Mutex
		acked = map[string]string{} // restore id → request id
	)
	stopWriters := make(chan struct{})
	var wg sync.WaitGroup
	writer := func(p *testcluster.Proc, w int) {
		defer wg.Done()
		client := restorev1.NewRestoreServiceClient(p.Conn())
		for i := 0; ; i++ {
			select {
			case <-stopWriters:
				return
			default:
			}
			req := fmt.Sprintf("w%d-%d", w, i)
			wctx, wdone := context.WithTimeout(ctx, 5*time.Second)
			resp, err := client.CreateRestore(testcluster.Ctx(wctx, tok.Secret), &restorev1.CreateRestoreRequest{
				RecoveryPointId: "rp-1", Mode: restorev1.Mode_MODE_VERIFY, MemoryMib: 96, RequestId: req,
			})
			wdone()
			if err == nil {
				mu.Lock()
				acked[resp.Restore.Id] = req
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i, p := range c.Followers(leader) {
		wg.Add(1)
		go writer(p, i)
	}
	time.Sleep(time.Second)
	mu.Lock()
	beforeKill := len(acked)
	mu.Unlock()
	if beforeKill == 0 {
		t.Fatal("no write through a follower succeeded")
	}

	killedAt := time.Now()
	leader.Kill()
	t.Logf("killed leader %s after %d acknowledged writes", leader.ID, beforeKill)

	var newLeader *testcluster.Proc
	if err := waitUntil(ctx, 20*time.Second, func() bool {
		newLeader, err = c.Leader(ctx)
		return err == nil && newLeader != leader
	}); err != nil {
		t.Fatalf("no new leader after the kill: %v", err)
	}
	t.Logf("new leader %s seen after %s", newLeader.ID, time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(time.Second) // keep writing under the new leader
	close(stopWriters)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) <= beforeKill {
		t.Fatalf("no write was acknowledged after the failover (%d before, %d total)", beforeKill, len(acked))
	}

	checkAll := func(p *testcluster.Proc, linearizable bool) {
		t.Helper()
		rctx := testcluster.Ctx(ctx, c.Token)
		if linearizable {
			rctx = metadata.AppendToOutgoingContext(rctx, "x-restored-consistency", "linearizable")
		}
		client := restorev1.NewRestoreServiceClient(p.Conn())
		for id, req := range acked {
			r, err := client.GetRestore(rctx, &restorev1.GetRestoreRequest{Id: id})
			if err != nil {
				t.Fatalf("acknowledged restore %s (request %s) missing on %s: %v", id, req, p.ID, err)
			}
			if r.Restore.RequestId != req {
				t.Fatalf("restore %s has request id %s, want %s", id, r.Restore.RequestId, req)
			}
		}
	}
	for _, p := range c.Followers(nil) {
		checkAll(p, true)
	}
	t.Logf("%d acknowledged writes (%d before the kill), all present after failover", len(acked), beforeKill)

	// The killed server comes back with its data and catches up.
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, 30*time.Second, func() bool {
		st, err := c.Status(ctx, leader)
		if err != nil || st.LeaderId == "" || len(st.Servers) != 3 {
			return false
		}
		return st.AppliedIndex >= st.CommitIndex && st.CommitIndex > 0
	}); err != nil {
		t.Fatalf("the killed server did not rejoin: %v", err)
	}
	if err := waitUntil(ctx, 10*time.Second, func() bool {
		r, err := restorev1.NewRestoreServiceClient(leader.Conn()).ListRestores(testcluster.Ctx(ctx, c.Token), &restorev1.ListRestoresRequest{PageSize: 1000})
		return err == nil && len(r.Restores) >= len(acked)
	}); err != nil {
		t.Fatalf("the rejoined server has not caught up: %v", err)
	}
	checkAll(leader, false) // its own local state, no forwarding

	// The audit record through any server: the writes (every server holds
	// them, from the log) and a refusal recorded by the follower that
	// refused it.
	procs := c.Followers(nil)
	refuser, reader := procs[0], procs[1]
	if _, err := restorev1.NewHostServiceClient(refuser.Conn()).ListHosts(testcluster.Ctx(ctx, tok.Secret), &restorev1.ListHostsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a partner lists hosts on %s: %v", refuser.ID, err)
	}
	// (A listing that could not reach a server says so; the refuser may
	// have restarted a moment ago.)
	var evs *restorev1.ListAuditEventsResponse
	if err := waitUntil(ctx, 15*time.Second, func() bool {
		evs, err = restorev1.NewAuditServiceClient(reader.Conn()).ListAuditEvents(testcluster.Ctx(ctx, c.Token), &restorev1.ListAuditEventsRequest{Method: "ListHosts", PageSize: 10})
		return err == nil && len(evs.MissingServers) == 0
	}); err != nil {
		t.Fatalf("the listing through %s never reached every server: %v %v", reader.ID, evs, err)
	}
	if len(evs.Events) != 1 || evs.Events[0].ServerId != refuser.ID || evs.Events[0].Code != "PermissionDenied" {
		t.Fatalf("the refusal on %s, read through %s: %v", refuser.ID, reader.ID, evs)
	}
	for _, p := range c.Procs {
		n, token := 0, ""
		for {
			w, err := restorev1.NewAuditServiceClient(p.Conn()).ListAuditEvents(testcluster.Ctx(ctx, c.Token),
				&restorev1.ListAuditEventsRequest{Method: "CreateRestore", Outcome: restorev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED, PageSize: 1000, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			n += len(w.Events)
			if token = w.NextPageToken; token == "" {
				break
			}
		}
		if n < len(acked) {
			t.Fatalf("server %s records %d accepted restore creates, %d were acknowledged", p.ID, n, len(acked))
		}
	}

	// A token used only on a follower shows its last use on every server:
	// the follower hands its batch to the leader (ClusterService.ReportTokenUse).
	fresh, err := admin(leader).CreateToken(testcluster.Ctx(ctx, c.Token), &restorev1.CreateTokenRequest{Tenant: "acme", Role: "backup"})
	if err != nil {
		t.Fatal(err)
	}
	usedAt := time.Now()
	if err := waitUntil(ctx, 10*time.Second, func() bool {
		_, err := restorev1.NewRecoveryPointServiceClient(reader.Conn()).ListRecoveryPoints(testcluster.Ctx(ctx, fresh.Secret), &restorev1.ListRecoveryPointsRequest{})
		return err == nil
	}); err != nil {
		t.Fatalf("the new token on %s: %v", reader.ID, err)
	}
	if err := waitUntil(ctx, 10*time.Second, func() bool {
		l, err := admin(refuser).ListTokens(testcluster.Ctx(ctx, c.Token), &restorev1.ListTokensRequest{Tenant: "acme"})
		if err != nil {
			return false
		}
		for _, tk := range l.Tokens {
			if tk.Id == fresh.Id && tk.LastUsedTime != nil && !tk.LastUsedTime.AsTime().Before(usedAt.Add(-time.Second)) {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("the last use on %s never reached %s: %v", reader.ID, refuser.ID, err)
	}
}

func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
