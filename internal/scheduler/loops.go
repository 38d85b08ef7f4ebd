package scheduler

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Applier writes one command through raft.
type Applier interface {
	Apply(t raftv1.CommandType, msg proto.Message, timeout time.Duration) (proto.Message, error)
}

// Loops are the leader's control loops.
type Loops struct {
	Store   *store.Store
	Raft    Applier
	Tracker *Tracker
	Log     *slog.Logger
	Now     func() time.Time
	// HeartbeatTTL: a READY host silent for longer becomes DOWN.
	HeartbeatTTL time.Duration
	// Interval is the longest time between two passes (state changes also
	// trigger a pass).
	Interval time.Duration
	// Retention says how long what has ended is kept.
	Retention Retention

	lastSweep    time.Time
	lastPolicies time.Time
}

// Run runs passes until ctx ends. Call it only while leading.
func (l *Loops) Run(ctx context.Context) {
	l.Tracker.Reset()
	for {
		ws := memdb.NewWatchSet()
		l.pass(ws)
		// Wait for a change or the interval, whichever comes first.
		waitCtx, cancel := context.WithTimeout(ctx, l.Interval)
		_ = ws.WatchCtx(waitCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		// Coalesce bursts of writes into one pass.
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *Loops) pass(ws memdb.WatchSet) {
	now := l.Now()
	// Heartbeats and leases need no more than a few checks a second, however
	// busy the cluster is; placement runs on every change.
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.lastSweep = now
		l.checkHeartbeats(now)
		l.expire(now)
		l.expireSnapshots(now)
	}
	if now.Sub(l.lastPolicies) >= policiesEvery {
		l.lastPolicies = now
		l.runPolicies(now)
		l.prune(now)
	}
	l.place(ws, now)
}

const (
	sweepEvery    = 200 * time.Millisecond
	policiesEvery = time.Second
)

// prune removes what is past its retention, a bounded batch at a time.
func (l *Loops) prune(now time.Time) {
	r := l.Store.Read(nil)
	if ids := ExpiredVerifications(r, now, l.Retention.Verifications); len(ids) > 0 {
		l.Log.Info("removing verifications past their retention", "count", len(ids), "retention", l.Retention.Verifications)
		l.apply(raftv1.CommandType_COMMAND_TYPE_PRUNE_VERIFICATIONS, &raftv1.PruneVerifications{Ids: ids})
	}
	if cmd := PruneDue(r, now, l.Retention); cmd != nil {
		l.Log.Info("pruning what ended past its retention", "restores", len(cmd.RestoreIds), "snapshots", len(cmd.SnapshotIds),
			"idempotency_keys", len(cmd.IdempotencyKeys), "revoked_tokens", len(cmd.TokenIds))
		l.apply(raftv1.CommandType_COMMAND_TYPE_PRUNE, cmd)
	}
}

// runPolicies starts the VERIFY restores the verification policies ask for.
func (l *Loops) runPolicies(now time.Time) {
	for _, x := range PolicyRuns(l.Store.Read(nil), now) {
		id, err := uuid.NewV7()
		if err != nil {
			l.Log.Error("policy run id", "err", err)
			return
		}
		x.Id = id.String()
		sum := sha256.Sum256([]byte(x.PolicyId + "|" + x.RecoveryPointId))
		l.Log.Info("verification policy starts a run", "policy", x.PolicyId, "recovery_point", x.RecoveryPointId, "host", x.HostId, "restore", x.Id)
		l.apply(raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE, &raftv1.CreateRestore{Restore: x, BodySha256: sum[:]})
	}
}

func (l *Loops) apply(t raftv1.CommandType, msg proto.Message) {
	if _, err := l.Raft.Apply(t, msg, 5*time.Second); err != nil {
		l.Log.Warn("leader loop write failed", "command", t.String(), "err", err)
	}
}

func (l *Loops) checkHeartbeats(now time.Time) {
	for _, h := range l.Store.Read(nil).Hosts() {
		if h.State != restorev1.HostState_HOST_STATE_READY {
			continue
		}
		if silent := l.Tracker.Silent(h.Id); silent > l.HeartbeatTTL {
			l.Log.Warn("host missed its heartbeat TTL; marking it DOWN", "host", h.Id, "silent", silent.Round(time.Millisecond))
			l.apply(raftv1.CommandType_COMMAND_TYPE_SET_HOST_STATE, &raftv1.SetHostState{
				Id: h.Id, State: restorev1.HostState_HOST_STATE_DOWN, Time: timestamppb.New(now),
				Reason: "no heartbeat for " + silent.Round(time.Second).String(),
			})
		}
	}
}

// expireSnapshots asks the hosts to release the snapshots whose lease ran
// out (a backup job that crashed or hung).
func (l *Loops) expireSnapshots(now time.Time) {
	if ids := ExpiredSnapshots(l.Store.Read(nil), now); len(ids) > 0 {
		l.Log.Info("snapshot leases ran out", "count", len(ids))
		l.apply(raftv1.CommandType_COMMAND_TYPE_RELEASE_SNAPSHOTS, &raftv1.ReleaseSnapshots{
			Ids: ids, Reason: "the lease ran out before the backup job released it", Time: timestamppb.New(now)})
	}
}

func (l *Loops) expire(now time.Time) {
	if ids := ExpiredRestores(l.Store.Read(nil), now); len(ids) > 0 {
		l.Log.Info("restore leases ran out", "count", len(ids))
		l.apply(raftv1.CommandType_COMMAND_TYPE_EXPIRE_RESTORES, &raftv1.ExpireRestores{Ids: ids, Time: timestamppb.New(now)})
	}
}

func (l *Loops) place(ws memdb.WatchSet, now time.Time) {
	l.Store.WatchTables(ws, store.TableRestores, store.TableHosts, store.TableRecoveryPoints)
	cmd := Plan(l.Store.Read(nil))
	if len(cmd.Placements) == 0 && len(cmd.Pending) == 0 {
		return
	}
	cmd.Time = timestamppb.New(now)
	for _, p := range cmd.Placements {
		l.Log.Info("placing restore", "restore", p.RestoreId, "host", p.HostId)
	}
	l.apply(raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES, cmd)
}
