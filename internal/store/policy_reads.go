package store

import (
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// RecoveryPointsOfAsset returns an asset's recovery points (asset index).
func (r *Reader) RecoveryPointsOfAsset(tenant, asset string) []*restorev1.RecoveryPoint {
	return as[*restorev1.RecoveryPoint](r.all(TableRecoveryPoints, indexAsset, tenant, asset))
}

// Verified says whether a recovery point has a verification.
func (r *Reader) Verified(recoveryPointID string) bool {
	return r.first(TableVerifications, indexRecoveryPoint, recoveryPointID) != nil
}

// RestoresOfRecoveryPoint returns the restores of a recovery point.
func (r *Reader) RestoresOfRecoveryPoint(recoveryPointID string) []*restorev1.Restore {
	return as[*restorev1.Restore](r.all(TableRestores, indexRecoveryPoint, recoveryPointID))
}

// LastPolicyRun returns the newest restore a policy started for an asset,
// or nil: one index step, however many runs there were.
func (r *Reader) LastPolicyRun(policyID, asset string) *restorev1.Restore {
	// Ids are time-ordered: the newest run is the largest id of the pair.
	it, err := r.txn.ReverseLowerBound(TableRestores, indexPolicyRuns, policyID, asset, "\U0010FFFF")
	if err != nil {
		return nil
	}
	obj := it.Next()
	if obj == nil {
		return nil
	}
	r.visited++
	x := obj.(*restorev1.Restore)
	if x.PolicyId != policyID || x.Asset != asset {
		return nil
	}
	return x
}

// ActivePolicyRuns counts the policy runs not ended on a host.
func (r *Reader) ActivePolicyRuns(hostID string) int {
	return len(r.all(TableRestores, indexActivePolicyRuns, hostID))
}
