package fsm

import (
	"fmt"
	"slices"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
)

// applyReportRecoveryPoints replaces the set of recovery points one host
// holds. A recovery point id already owned by another tenant or asset is
// ignored: the first report wins, so one host cannot take over another
// tenant's recovery point by reusing its id.
func applyReportRecoveryPoints(txn *store.Txn, payload []byte, index uint64) (proto.Message, error) {
	var cmd raftv1.ReportRecoveryPoints
	if err := decode(payload, &cmd); err != nil {
		return nil, err
	}
	scan, more := cmd.ScanId, cmd.More
	if scan == "" {
		// The whole set in one entry: a scan of its own.
		scan, more = fmt.Sprintf("entry-%d", index), false
	}
	r := store.ReaderFor(txn)
	accepted := int32(0)
	for _, rp := range cmd.RecoveryPoints {
		cur := r.RecoveryPoint(rp.Id)
		if cur != nil && (cur.Tenant != rp.Tenant || cur.Asset != rp.Asset) {
			continue
		}
		next := clone(rp)
		next.HostIds = nil
		if cur != nil {
			next.HostIds = slices.Clone(cur.HostIds)
		}
		if !slices.Contains(next.HostIds, cmd.HostId) {
			next.HostIds = append(next.HostIds, cmd.HostId)
			slices.Sort(next.HostIds)
		}
		if err := txn.Insert(store.TableRecoveryPoints, next); err != nil {
			return nil, err
		}
		if err := txn.Insert(store.TableScanMarks, &raftv1.ScanMark{HostId: cmd.HostId, RecoveryPointId: rp.Id, ScanId: scan}); err != nil {
			return nil, err
		}
		accepted++
	}
	if more {
		return &restorev1.ReportRecoveryPointsResponse{Accepted: accepted}, nil
	}
	// The scan is complete: what no part of it listed is gone from the host.
	keep := map[string]bool{}
	for _, cur := range r.RecoveryPointsHeldBy(cmd.HostId) {
		if m := r.ScanMark(cmd.HostId, cur.Id); m != nil && m.ScanId == scan {
			keep[cur.Id] = true
		}
	}
	if err := withdraw(txn, r, cmd.HostId, keep); err != nil {
		return nil, err
	}
	if h := r.Host(cmd.HostId); h != nil {
		next := clone(h)
		next.RecoveryPoints = int32(len(keep))
		if err := txn.Insert(store.TableHosts, next); err != nil {
			return nil, err
		}
	}
	return &restorev1.ReportRecoveryPointsResponse{Accepted: accepted}, nil
}

// withdraw takes host off the holders of every recovery point it holds but
// keep, and forgets the recovery points no host holds any more.
func withdraw(txn *store.Txn, r *store.Reader, hostID string, keep map[string]bool) error {
	for _, cur := range r.RecoveryPointsHeldBy(hostID) {
		if keep[cur.Id] {
			continue
		}
		if m := r.ScanMark(hostID, cur.Id); m != nil {
			if err := txn.Delete(store.TableScanMarks, m); err != nil {
				return err
			}
		}
		next := clone(cur)
		next.HostIds = slices.DeleteFunc(next.HostIds, func(h string) bool { return h == hostID })
		var err error
		if len(next.HostIds) == 0 {
			err = txn.Delete(store.TableRecoveryPoints, cur)
		} else {
			err = txn.Insert(store.TableRecoveryPoints, next)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
