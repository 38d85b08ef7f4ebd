package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/liveness"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var (
	// errPreferredBack ends a session on a server the host does not prefer
	// once the one it prefers serves again.
	errPreferredBack = errors.New("the preferred server serves again")
	// errNotRegistered ends a session whose server no longer knows the host.
	errNotRegistered = errors.New("the server does not know this host")
)

const (
	// registerTimeout bounds the first call of a session: a server that
	// does not answer it is skipped for the next.
	registerTimeout = 5 * time.Second
	// missedBeats heartbeats that fail in a row end the session: the
	// server stopped answering (well within the heartbeat TTL, which is
	// five intervals by default).
	missedBeats = 2
)

// dial connects to a server with the agent's certificate and keepalive.
func (a *Agent) dial(server string) (*grpc.ClientConn, error) {
	return grpc.NewClient(server, append(liveness.DialOptions(),
		grpc.WithTransportCredentials(credentials.NewTLS(a.id.DialConfig(server))))...)
}

// session is one connection to a server: register, heartbeat, report,
// and reconcile every assignment message until the stream breaks, the
// server stops answering heartbeats, or (on a server this host does not
// prefer) the preferred one serves again. registered says whether the
// server took the host's registration.
func (a *Agent) session(ctx context.Context, p *parts, server string) (registered bool, err error) {
	conn, err := a.dial(server)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	client := restorev1.NewAgentServiceClient(conn)
	req, err := a.registration(ctx, p)
	if err != nil {
		return false, err
	}
	rctx, rcancel := context.WithTimeout(ctx, registerTimeout)
	reg, err := client.Register(rctx, req)
	rcancel()
	if err != nil {
		return false, fmt.Errorf("register: %w", err)
	}
	a.ctl.use(client)
	a.servers.learn(reg.Servers)
	a.log.Info("registered", "server", server, "host", a.cfg.HostID, "capacity_vcpus", req.Capacity.Vcpus, "capacity_mib", req.Capacity.MemoryMib,
		"disk_mib", req.Capacity.DiskMib, "capabilities", p.hv.Capabilities().String())
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go a.heartbeats(sctx, cancel, client, time.Duration(reg.HeartbeatIntervalMs)*time.Millisecond)
	go a.diskReports(sctx, client, p, req.Capacity.DiskMib)
	go a.renewals(sctx, client)
	go a.awaitPreferred(sctx, cancel, server)
	// Know the repository before acting on any assignment.
	if err := a.scanAndReport(sctx, client); err != nil {
		a.log.Warn("recovery point report failed", "err", err)
	}
	if err := a.reportInventory(sctx, client, p.hv); err != nil {
		a.log.Warn("inventory report failed", "err", err)
	}
	go a.rescans(sctx, client, p.hv)
	go p.tunnel.run(sctx, client)
	stream, err := client.WatchAssignments(sctx, &restorev1.WatchAssignmentsRequest{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID})
	if err != nil {
		return true, fmt.Errorf("watch assignments: %w", err)
	}
	// Reconcile on every new desired state, and again every ReconcileEvery
	// with the last one: a teardown that failed is retried, not forgotten.
	msgs := make(chan *restorev1.WatchAssignmentsResponse)
	errs := make(chan error, 1)
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				errs <- err
				return
			}
			select {
			case msgs <- msg:
			case <-sctx.Done():
				return
			}
		}
	}()
	var last *restorev1.WatchAssignmentsResponse
	tick := time.NewTicker(a.cfg.ReconcileEvery)
	defer tick.Stop()
	for {
		select {
		case <-sctx.Done():
			return true, context.Cause(sctx)
		case err := <-errs:
			return true, fmt.Errorf("assignment stream: %w", err)
		case last = <-msgs:
		case <-tick.C:
			if last == nil {
				continue
			}
		}
		p.restores.reconcile(sctx, last.Assignments)
		p.snapshots.reconcile(sctx, last.Snapshots)
	}
}

// heartbeats tells the server the host is alive every interval, learns
// the cluster's servers from the answers, and ends the session when the
// server stops answering or no longer knows the host.
func (a *Agent) heartbeats(ctx context.Context, end context.CancelCauseFunc, client restorev1.AgentServiceClient, every time.Duration) {
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	missed := 0
	for {
		hctx, cancel := context.WithTimeout(ctx, every)
		resp, err := client.Heartbeat(hctx, &restorev1.HeartbeatRequest{ProtocolVersion: version.AgentProtocol, HostId: a.cfg.HostID})
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			missed++
			a.log.Warn("heartbeat failed", "missed", missed, "err", err)
			if missed >= missedBeats {
				end(fmt.Errorf("%d heartbeats in a row failed: %w", missed, err))
				return
			}
		case !resp.Registered:
			end(errNotRegistered)
			return
		default:
			missed = 0
			a.servers.learn(resp.Servers)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// awaitPreferred asks now and then whether the server this host prefers
// (which changes as the agent learns the cluster's list) serves again, by
// its gRPC health, while the session is on another one; it ends the
// session when it does: the hosts go back to balancing over the servers.
func (a *Agent) awaitPreferred(ctx context.Context, end context.CancelCauseFunc, current string) {
	for {
		every := a.cfg.PreferredEvery
		wait := every/2 + rand.N(every) // jitter: hosts do not all move at once
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		preferred := a.servers.order()[0]
		if preferred == current {
			continue
		}
		if a.serving(ctx, preferred) {
			end(errPreferredBack)
			return
		}
	}
}

// serving says whether a server answers its gRPC health check SERVING.
func (a *Agent) serving(ctx context.Context, server string) bool {
	conn, err := a.dial(server)
	if err != nil {
		return false
	}
	defer conn.Close()
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING
}
