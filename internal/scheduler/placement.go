package scheduler

import (
	"fmt"
	"slices"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/store"
	"google.golang.org/protobuf/proto"
)

// pass is one placement pass: what it has given out so far on each host
// (the replicated allocation plus its own placements) and each recovery
// point's holders, looked up and sorted once.
type pass struct {
	r         *store.Reader
	allocated map[string]*restorev1.Capacity
	holders   map[string][]string
	// labs are the hosts of the labs this pass placed a restore of.
	labs map[string]string
}

func newPass(r *store.Reader) *pass {
	return &pass{r: r, allocated: map[string]*restorev1.Capacity{}, holders: map[string][]string{}, labs: map[string]string{}}
}

// labHost is where x's lab runs: on a host this pass placed it on, or
// where the store has it.
func (p *pass) labHost(x *restorev1.Restore) string {
	if h, ok := p.labs[lifecycle.Lab(x)]; ok {
		return h
	}
	return p.r.LabHost(x)
}

func (p *pass) allocation(hostID string) *restorev1.Capacity {
	a, ok := p.allocated[hostID]
	if !ok {
		// A copy of every field: the pass adds to it.
		a = proto.Clone(p.r.Allocated(hostID)).(*restorev1.Capacity)
		p.allocated[hostID] = a
	}
	return a
}

// take gives x's demand (and its lab) to host for the rest of the pass.
func (p *pass) take(x *restorev1.Restore, host string) {
	lifecycle.Allocate(p.allocation(host), x, 1)
	if lab := lifecycle.Lab(x); lab != "" {
		p.labs[lab] = host
	}
}

func (p *pass) holdersOf(rp *restorev1.RecoveryPoint) []string {
	hs, ok := p.holders[rp.Id]
	if !ok {
		hs = slices.Sorted(slices.Values(rp.HostIds))
		p.holders[rp.Id] = hs
	}
	return hs
}

// Plan decides one scheduler pass: each PENDING restore (oldest first) goes
// to the host that lifecycle.Fit accepts (READY, undrained, holding its
// recovery point, with room), preferring the host with the most free
// memory. Restores that cannot be placed get a reason naming what is
// missing; only changed reasons are returned, so an idle cluster writes
// nothing.
func Plan(r *store.Reader) *raftv1.PlaceRestores {
	cmd := &raftv1.PlaceRestores{}
	p := newPass(r)
	for _, x := range r.PendingRestores() {
		host, reason := p.choose(x)
		if host == "" {
			if reason != x.StateReason {
				cmd.Pending = append(cmd.Pending, &raftv1.PendingReason{RestoreId: x.Id, Reason: reason})
			}
			continue
		}
		p.take(x, host)
		cmd.Placements = append(cmd.Placements, &raftv1.Placement{RestoreId: x.Id, HostId: host})
	}
	return cmd
}

// PlaceBatch chooses a host for each of a batch's new restores in one
// pass, so each counts the ones before it (they are spread across the
// hosts that hold them while they fit): the restore's HostId is set as a
// hint, or, for one that fits nowhere now, its StateReason says why.
func PlaceBatch(r *store.Reader, xs []*restorev1.Restore) {
	p := newPass(r)
	for _, x := range xs {
		host, reason := p.choose(x)
		if host == "" {
			x.StateReason = reason
			continue
		}
		p.take(x, host)
		x.HostId = host
	}
}

// PlaceOne picks a host for one new restore, or "" with the reason when none
// fits. The API calls it before raft.Apply so that most restores are created
// already SCHEDULED, in one raft entry; the FSM re-checks the choice.
func PlaceOne(r *store.Reader, x *restorev1.Restore) (string, string) {
	return newPass(r).choose(x)
}

func (p *pass) choose(x *restorev1.Restore) (string, string) {
	rp := p.r.RecoveryPoint(x.RecoveryPointId)
	if rp == nil || len(rp.HostIds) == 0 {
		return "", fmt.Sprintf("no host holds recovery point %s", x.RecoveryPointId)
	}
	best := ""
	var bestFree int64
	var unusable, tooSmall, noDisk []string
	for _, id := range p.holdersOf(rp) {
		h, a := p.r.Host(id), p.allocation(id)
		switch m := lifecycle.Fit(h, a, rp, x, p.labHost(x)); m {
		case lifecycle.Fits:
			if free := lifecycle.Free(h, a).MemoryMib; best == "" || free > bestFree {
				best, bestFree = id, free
			}
		case lifecycle.TooSmall:
			tooSmall = append(tooSmall, m.Describe(id, h, a))
		case lifecycle.NoDiskRoom:
			noDisk = append(noDisk, m.Describe(id, h, a))
		default:
			unusable = append(unusable, m.Describe(id, h, a))
		}
	}
	if best != "" {
		return best, ""
	}
	var parts []string
	if len(tooSmall) > 0 {
		parts = append(parts, fmt.Sprintf("no host holding recovery point %s has %d vCPUs and %d MiB free (%s)",
			x.RecoveryPointId, x.Vcpus, x.MemoryMib, strings.Join(tooSmall, "; ")))
	}
	if len(noDisk) > 0 {
		parts = append(parts, fmt.Sprintf("no host holding recovery point %s has room for an overlay that may grow to %d MiB (%s)",
			x.RecoveryPointId, x.OverlayLimitMib, strings.Join(noDisk, "; ")))
	}
	if len(unusable) > 0 {
		parts = append(parts, fmt.Sprintf("hosts holding recovery point %s cannot take restores: %s",
			x.RecoveryPointId, strings.Join(unusable, ", ")))
	}
	return "", strings.Join(parts, "; ")
}
