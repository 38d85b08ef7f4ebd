package scheduler

import (
	"time"

	"github.com/restored/restored/internal/audit"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Retention says how long what has ended is kept before the leader prunes
// it through raft; 0 keeps it forever.
type Retention struct {
	// Restores: terminal restores with nothing left on a host, after their
	// last change (their verifications stay: Verifications).
	Restores time.Duration
	// Snapshots: released or failed snapshots, after their release.
	Snapshots time.Duration
	// IdempotencyKeys: how long a request_id answers with its first result.
	IdempotencyKeys time.Duration
	// RevokedTokens: revoked and expired tokens, after they stopped
	// working (store.TokenEnd: their last possible use).
	RevokedTokens time.Duration
	// Verifications: verifications and their evidence records, after they
	// ended.
	Verifications time.Duration
	// Audit: audit events (writes in the log and each server's refusals).
	Audit time.Duration
}

// DefaultRetention is what a user would expect.
var DefaultRetention = Retention{
	Restores:        30 * 24 * time.Hour,
	Snapshots:       30 * 24 * time.Hour,
	IdempotencyKeys: 24 * time.Hour,
	RevokedTokens:   24 * time.Hour,
	Verifications:   90 * 24 * time.Hour,
	Audit:           audit.DefaultRetention,
}

// pruneBatch bounds what one prune command removes of each kind.
const pruneBatch = 500

// PruneDue decides what to prune now: the objects past their retention,
// found through the store's time indexes (nothing else is read). It
// returns nil when nothing is due.
func PruneDue(r *store.Reader, now time.Time, keep Retention) *raftv1.Prune {
	cmd := &raftv1.Prune{}
	if keep.Restores > 0 {
		cut := now.Add(-keep.Restores)
		cmd.RestoresBefore = timestamppb.New(cut)
		for _, x := range r.RestoresEndedBy(cut, pruneBatch) {
			cmd.RestoreIds = append(cmd.RestoreIds, x.Id)
		}
	}
	if keep.Snapshots > 0 {
		cut := now.Add(-keep.Snapshots)
		cmd.SnapshotsBefore = timestamppb.New(cut)
		for _, s := range r.SnapshotsEndedBy(cut, pruneBatch) {
			cmd.SnapshotIds = append(cmd.SnapshotIds, s.Id)
		}
	}
	if keep.IdempotencyKeys > 0 {
		cut := now.Add(-keep.IdempotencyKeys)
		cmd.KeysBefore = timestamppb.New(cut)
		for _, k := range r.IdempotencyKeysCreatedBy(cut, pruneBatch) {
			cmd.IdempotencyKeys = append(cmd.IdempotencyKeys, &raftv1.IdempotencyKey{Kind: k.Kind, Tenant: k.Tenant, RequestId: k.RequestId})
		}
	}
	if keep.RevokedTokens > 0 {
		cut := now.Add(-keep.RevokedTokens)
		cmd.TokensBefore = timestamppb.New(cut)
		for _, t := range r.TokensEndedBy(cut, pruneBatch) {
			cmd.TokenIds = append(cmd.TokenIds, t.GetToken().GetId())
		}
	}
	if keep.Audit > 0 {
		cut := now.Add(-keep.Audit)
		cmd.AuditBefore = timestamppb.New(cut)
		for _, ev := range r.AuditEventsBy(cut, pruneBatch) {
			cmd.AuditIds = append(cmd.AuditIds, ev.Id)
		}
	}
	if len(cmd.RestoreIds)+len(cmd.SnapshotIds)+len(cmd.IdempotencyKeys)+len(cmd.TokenIds)+len(cmd.AuditIds) == 0 {
		return nil
	}
	return cmd
}

// ExpiredVerifications lists verifications that ended more than retention
// ago (at most pruneBatch); retention 0 keeps everything.
func ExpiredVerifications(r *store.Reader, now time.Time, retention time.Duration) []string {
	if retention <= 0 {
		return nil
	}
	var ids []string
	for _, v := range r.VerificationsEndedBy(now.Add(-retention), pruneBatch) {
		ids = append(ids, v.Id)
	}
	return ids
}

// ExpiredRestores lists the restores whose lease ran out (at most
// pruneBatch a pass).
func ExpiredRestores(r *store.Reader, now time.Time) []string {
	var ids []string
	for _, x := range r.RestoresExpiringBy(now, pruneBatch) {
		ids = append(ids, x.Id)
	}
	return ids
}
