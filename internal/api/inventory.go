package api

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Bounds of an inventory.
const (
	maxInventoryDomains = 10000
	maxDomainDisks      = 64
)

// ReportInventory implements the RPC: the host's domains replace what it
// reported before, through raft only when something changed. Domains the
// hoster assigned to a tenant in their XML are registered to it.
func (s *AgentService) ReportInventory(ctx context.Context, req *restorev1.ReportInventoryRequest) (*restorev1.ReportInventoryResponse, error) {
	if err := checkAgent(ctx, req.ProtocolVersion, req.HostId); err != nil {
		return nil, err
	}
	if _, err := s.knownHost(req.HostId); err != nil {
		return nil, err
	}
	domains, err := checkInventory(req.Domains)
	if err != nil {
		return nil, err
	}
	r := s.Store.Read(nil)
	cmd := &raftv1.ReportInventory{HostId: req.HostId, Domains: domains, Time: timestamppb.New(s.Now())}
	for _, d := range domains {
		if d.OwnerTenant == "" || r.Tenant(d.OwnerTenant) == nil || len(r.GuestsWithUUID(d.Uuid)) > 0 {
			continue
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		cmd.Adopt = append(cmd.Adopt, &restorev1.Guest{Id: id.String(), Tenant: d.OwnerTenant, Name: d.Name, Uuid: d.Uuid})
	}
	if len(cmd.Adopt) == 0 && sameInventory(r.Inventory(req.HostId), domains) {
		return &restorev1.ReportInventoryResponse{Changed: false}, nil
	}
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REPORT_INVENTORY, cmd); err != nil {
		return nil, err
	}
	if len(cmd.Adopt) > 0 {
		s.Log.Info("guests registered from the hoster's tags in their domains", "host", req.HostId, "count", len(cmd.Adopt))
	}
	return &restorev1.ReportInventoryResponse{Changed: true}, nil
}

// checkInventory validates an agent's domains and returns them sorted by
// UUID, as the store keeps them (without host or owner fields it fills).
func checkInventory(in []*restorev1.HostDomain) ([]*restorev1.HostDomain, error) {
	if len(in) > maxInventoryDomains {
		return nil, validate.Errorf("an inventory lists at most %d domains, not %d", maxInventoryDomains, len(in))
	}
	seen := map[string]bool{}
	out := make([]*restorev1.HostDomain, 0, len(in))
	for i, d := range in {
		field := func(f string) string { return fmt.Sprintf("domains[%d].%s", i, f) }
		u, err := uuid.Parse(d.Uuid)
		if err != nil {
			return nil, validate.Errorf("%s must be a UUID, got %q", field("uuid"), d.Uuid)
		}
		if seen[u.String()] {
			return nil, validate.Errorf("domain %s is listed twice", u)
		}
		seen[u.String()] = true
		if err := validate.Required(field("name"), d.Name); err != nil {
			return nil, err
		}
		if d.OwnerTenant != "" {
			if err := validate.DNSLabel(field("owner_tenant"), d.OwnerTenant); err != nil {
				return nil, err
			}
		}
		if d.Moref != "" && !morefPattern.MatchString(d.Moref) {
			return nil, validate.Errorf("%s must be a managed object id like vm-42, got %q", field("moref"), d.Moref)
		}
		if len(d.Disks) > maxDomainDisks {
			return nil, validate.Errorf("%s lists %d disks (at most %d)", field("disks"), len(d.Disks), maxDomainDisks)
		}
		for j, disk := range d.Disks {
			if err := validate.Required(fmt.Sprintf("%s[%d]", field("disks"), j), disk); err != nil {
				return nil, err
			}
		}
		out = append(out, &restorev1.HostDomain{Uuid: u.String(), Name: d.Name, Moref: d.Moref, Running: d.Running, Disks: d.Disks, OwnerTenant: d.OwnerTenant})
	}
	slices.SortFunc(out, func(a, b *restorev1.HostDomain) int { return strings.Compare(a.Uuid, b.Uuid) })
	return out, nil
}

// sameInventory says whether a host's stored inventory is what it reports.
func sameInventory(stored, reported []*restorev1.HostDomain) bool {
	if len(stored) != len(reported) {
		return false
	}
	for i := range stored {
		c := proto.Clone(stored[i]).(*restorev1.HostDomain)
		c.HostId = ""
		if !proto.Equal(c, reported[i]) {
			return false
		}
	}
	return true
}

// ListHostDomains implements the RPC: a host's inventory, with the guest
// that owns each domain.
func (s *HostService) ListHostDomains(_ context.Context, req *restorev1.ListHostDomainsRequest) (*restorev1.ListHostDomainsResponse, error) {
	if err := validate.DNSLabel("id", req.Id); err != nil {
		return nil, err
	}
	r := s.Store.Read(nil)
	h := r.Host(req.Id)
	if h == nil {
		return nil, status.Errorf(codes.NotFound, "host %q not found", req.Id)
	}
	out := &restorev1.ListHostDomainsResponse{ReportTime: h.InventoryTime}
	for _, d := range r.Inventory(req.Id) {
		c := proto.Clone(d).(*restorev1.HostDomain)
		if gs := r.GuestsWithUUID(d.Uuid); len(gs) > 0 {
			c.GuestId, c.Tenant = gs[0].Id, gs[0].Tenant
		}
		out.Domains = append(out.Domains, c)
	}
	return out, nil
}
