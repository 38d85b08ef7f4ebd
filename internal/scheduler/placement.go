package scheduler

import (
	"fmt"
	"slices"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
)

type free struct {
	vcpus  int32
	memory int64
}

// Plan decides one scheduler pass: each PENDING restore (oldest first) goes
// to the READY, undrained host that holds its recovery point and has room,
// preferring the host with the most free memory. Restores that cannot be
// placed get a reason naming what is missing; only changed reasons are
// returned, so an idle cluster writes nothing.
func Plan(r *store.Reader) *raftv1.PlaceRestores {
	cmd := &raftv1.PlaceRestores{}
	pending := r.RestoresInState(restorev1.RestoreState_RESTORE_STATE_PENDING)
	if len(pending) == 0 {
		return cmd
	}
	room := map[string]*free{}
	hosts := map[string]*restorev1.Host{}
	for _, h := range r.Hosts() {
		a := r.Allocated(h.Id)
		hosts[h.Id] = h
		room[h.Id] = &free{vcpus: h.GetCapacity().GetVcpus() - a.Vcpus, memory: h.GetCapacity().GetMemoryMib() - a.MemoryMib}
	}
	// Holders of each recovery point, looked up and sorted once per pass.
	holders := map[string][]string{}
	for _, x := range pending {
		hs, ok := holders[x.RecoveryPointId]
		if !ok {
			if rp := r.RecoveryPoint(x.RecoveryPointId); rp != nil {
				hs = slices.Sorted(slices.Values(rp.HostIds))
			}
			holders[x.RecoveryPointId] = hs
		}
		host, reason := choose(hs, x, hosts, room)
		if host == "" {
			if reason != x.StateReason {
				cmd.Pending = append(cmd.Pending, &raftv1.PendingReason{RestoreId: x.Id, Reason: reason})
			}
			continue
		}
		room[host].vcpus -= x.Vcpus
		room[host].memory -= x.MemoryMib
		cmd.Placements = append(cmd.Placements, &raftv1.Placement{RestoreId: x.Id, HostId: host})
	}
	return cmd
}

// PlaceOne picks a host for one new restore, or "" with the reason when none
// fits. The API calls it before raft.Apply so that most restores are created
// already SCHEDULED, in one raft entry; the FSM re-checks the choice.
func PlaceOne(r *store.Reader, x *restorev1.Restore) (string, string) {
	rp := r.RecoveryPoint(x.RecoveryPointId)
	if rp == nil {
		return choose(nil, x, nil, nil)
	}
	holders := slices.Sorted(slices.Values(rp.HostIds))
	hosts := map[string]*restorev1.Host{}
	room := map[string]*free{}
	for _, id := range holders {
		if h := r.Host(id); h != nil {
			a := r.Allocated(id)
			hosts[id] = h
			room[id] = &free{vcpus: h.GetCapacity().GetVcpus() - a.Vcpus, memory: h.GetCapacity().GetMemoryMib() - a.MemoryMib}
		}
	}
	return choose(holders, x, hosts, room)
}

func choose(holders []string, x *restorev1.Restore, hosts map[string]*restorev1.Host, room map[string]*free) (string, string) {
	if len(holders) == 0 {
		return "", fmt.Sprintf("no host holds recovery point %s", x.RecoveryPointId)
	}
	best := ""
	var unusable []string
	var tooSmall []string
	for _, id := range holders {
		h := hosts[id]
		switch {
		case h == nil:
			unusable = append(unusable, id+" (not registered)")
		case h.State != restorev1.HostState_HOST_STATE_READY:
			unusable = append(unusable, id+" (down)")
		case h.Drained:
			unusable = append(unusable, id+" (drained)")
		case room[id].vcpus < x.Vcpus || room[id].memory < x.MemoryMib:
			tooSmall = append(tooSmall, fmt.Sprintf("%s has %d vCPUs and %d MiB free", id, room[id].vcpus, room[id].memory))
		case best == "" || room[id].memory > room[best].memory:
			best = id
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
	if len(unusable) > 0 {
		parts = append(parts, fmt.Sprintf("hosts holding recovery point %s cannot take restores: %s",
			x.RecoveryPointId, strings.Join(unusable, ", ")))
	}
	return "", strings.Join(parts, "; ")
}
