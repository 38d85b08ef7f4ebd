package api

import (
	"context"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/ownership"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// normalizeNetwork checks a restore's network request; what the server
// sets (link_down) is never taken from the caller.
func normalizeNetwork(n *restorev1.Network) error {
	n.LinkDown, n.LinkDownReason = false, ""
	if err := validate.Optional("network.bridge", n.Bridge); err != nil {
		return err
	}
	bridged := n.Kind == restorev1.NetworkKind_NETWORK_KIND_BRIDGED
	switch {
	case bridged && !kinds.ValidBridgeName(n.Bridge):
		return validate.Errorf("network.bridge must name a host bridge an operator offers (1-15 characters A-Z a-z 0-9 _ . -) when network.kind is BRIDGED, got %q", n.Bridge)
	case !bridged && n.Bridge != "":
		return validate.Errorf("network.bridge is only allowed with network.kind BRIDGED")
	case !bridged && n.AllowIdentityConflict:
		return validate.Errorf("network.allow_identity_conflict is only for network.kind BRIDGED")
	case n.Lab != "" && n.Kind != restorev1.NetworkKind_NETWORK_KIND_ISOLATED:
		return validate.Errorf("network.lab is only for network.kind ISOLATED")
	}
	if n.Lab != "" {
		return validate.DNSLabel("network.lab", n.Lab)
	}
	return nil
}

// offerNetwork refuses a BRIDGED restore whose bridge no host holding
// the recovery point offers the tenant, and boots one whose production
// machine is known with its link down (ownership.IdentityConflict).
func offerNetwork(r *store.Reader, rp *restorev1.RecoveryPoint, x *restorev1.Restore) error {
	n := x.Network
	if n.GetKind() != restorev1.NetworkKind_NETWORK_KIND_BRIDGED {
		return nil
	}
	offered := false
	var domains []*restorev1.HostDomain
	for _, h := range rp.HostIds {
		offered = offered || lifecycle.BridgeOffered(r.Host(h), n.Bridge, x.Tenant)
		domains = append(domains, r.Inventory(h)...)
	}
	if !offered {
		return status.Errorf(codes.PermissionDenied, "bridge %q is not offered to tenant %s on any host holding recovery point %s: an operator offers bridges per host and tenant (hypervisor-agent --bridge %s=%s)",
			n.Bridge, x.Tenant, rp.Id, n.Bridge, x.Tenant)
	}
	if why := ownership.IdentityConflict(x.Asset, r.Guests(x.Tenant), domains); why != "" && !n.AllowIdentityConflict {
		n.LinkDown = true
		n.LinkDownReason = fmt.Sprintf("%s: the restore boots with its link down; POST /v1/restores/%s:link-up once that machine is off bridge %s (or ask with network.allow_identity_conflict)", why, x.Id, n.Bridge)
	}
	return nil
}

// LinkUpRestore implements the RPC.
func (s *RestoreService) LinkUpRestore(ctx context.Context, req *restorev1.LinkUpRestoreRequest) (*restorev1.LinkUpRestoreResponse, error) {
	x, err := visibleRestore(s.Store.Read(nil), principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	if !x.GetNetwork().GetLinkDown() {
		return &restorev1.LinkUpRestoreResponse{Restore: x}, nil
	}
	if lifecycle.Terminal(x.State) {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is %s", x.Id, x.State)
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_LINK_UP_RESTORE, &raftv1.LinkUpRestore{Id: x.Id, Time: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	s.Log.Info("restore link up asked", "restore", x.Id, "tenant", x.Tenant)
	return &restorev1.LinkUpRestoreResponse{Restore: out.(*restorev1.Restore)}, nil
}

// maxBridges bounds the bridges a host offers.
const maxBridges = 64

// checkBridges validates the bridges an agent says its host offers.
func checkBridges(bs []*restorev1.HostBridge) error {
	if len(bs) > maxBridges {
		return validate.Errorf("a host offers at most %d bridges, not %d", maxBridges, len(bs))
	}
	seen := map[string]bool{}
	for i, b := range bs {
		if !kinds.ValidBridgeName(b.Name) {
			return validate.Errorf("bridges[%d].name %q is not an interface name", i, b.Name)
		}
		if seen[b.Name] {
			return validate.Errorf("bridge %s is listed twice", b.Name)
		}
		seen[b.Name] = true
		if !b.AllTenants && len(b.Tenants) == 0 {
			return validate.Errorf("bridge %s is offered to no tenant", b.Name)
		}
		for j, t := range b.Tenants {
			if err := validate.DNSLabel(fmt.Sprintf("bridges[%d].tenants[%d]", i, j), t); err != nil {
				return err
			}
		}
	}
	return nil
}
