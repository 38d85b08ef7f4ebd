package api

import (
	"context"
	"regexp"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/ownership"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// GuestService implements restore.v1.GuestService.
type GuestService struct {
	restorev1.UnimplementedGuestServiceServer
	*Deps
}

var morefPattern = regexp.MustCompile(`^[a-z]+-[0-9a-z]+$`) // vm-42

// RegisterGuest implements the RPC.
func (s *GuestService) RegisterGuest(ctx context.Context, req *restorev1.RegisterGuestRequest) (*restorev1.RegisterGuestResponse, error) {
	tenant, err := tenantFor(s.Store.Read(nil), principal(ctx), req.Tenant)
	if err != nil {
		return nil, err
	}
	if err := validate.Enum("hypervisor", req.Hypervisor); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{{"host_id", req.HostId}, {"name", req.Name}, {"uuid", req.Uuid}, {"vcenter", req.Vcenter}, {"moref", req.Moref}} {
		if err := validate.Optional(f.name, f.v); err != nil {
			return nil, err
		}
	}
	if req.Uuid != "" {
		if _, err := uuid.Parse(req.Uuid); err != nil {
			return nil, validate.Errorf("uuid must be a UUID (like 4c4c4544-0042-3510-8053-b4c04f4e3032), got %q", req.Uuid)
		}
	}
	switch {
	case req.HostId == "":
		return nil, validate.Errorf("a %s guest needs host_id (the host it runs on: for VMware, the Restored host of its vCenter cluster)", req.Hypervisor)
	case req.Moref != "" && !morefPattern.MatchString(req.Moref):
		return nil, validate.Errorf("moref must be a managed object id like vm-42, got %q", req.Moref)
	case req.Hypervisor != restorev1.Hypervisor_HYPERVISOR_VMWARE && (req.Vcenter != "" || req.Moref != ""):
		return nil, validate.Errorf("vcenter and moref are for VMWARE guests")
	case req.Hypervisor == restorev1.Hypervisor_HYPERVISOR_VMWARE && req.Name == "" && req.Uuid == "" && req.Moref == "":
		return nil, validate.Errorf("a VMWARE guest needs uuid (its instance UUID), moref (like vm-42) or name")
	case req.Hypervisor != restorev1.Hypervisor_HYPERVISOR_VMWARE && req.Name == "" && req.Uuid == "":
		return nil, validate.Errorf("a %s guest needs name or uuid", req.Hypervisor)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "guest id: %v", err)
	}
	g := &restorev1.Guest{Id: id.String(), Tenant: tenant, Hypervisor: req.Hypervisor, HostId: req.HostId, Name: req.Name,
		Uuid: req.Uuid, Vcenter: req.Vcenter, Moref: req.Moref, CreateTime: timestamppb.New(s.Now())}
	// Only a domain its host reports, owned by no other guest, may be
	// registered: refused here (no raft entry); the FSM checks again for
	// registrations and inventories racing.
	r := s.Store.Read(nil)
	if !ownership.FromInventory(req.Hypervisor) {
		return nil, status.Errorf(codes.FailedPrecondition, "%s guests are registered once their driver reports an inventory of what exists; none does yet", req.Hypervisor)
	}
	h := r.Host(req.HostId)
	if h == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "host %q is not registered: its agent must report its domains first", req.HostId)
	}
	if hv := hypervisor.KindOfHost(h); hv.API() != req.Hypervisor {
		want, _ := kinds.HypervisorFromAPI(req.Hypervisor)
		return nil, status.Errorf(codes.FailedPrecondition, "host %s runs %s, not %s: register the guest on the host of its hypervisor", req.HostId, hv, want)
	}
	d, err := ownership.Find(req.HostId, r.Inventory(req.HostId), ownership.Key{Name: req.Name, UUID: req.Uuid, Moref: req.Moref})
	if err != nil {
		return nil, err
	}
	if err := ownership.MayOwn(tenant, d.Uuid, r.GuestsWithUUID(d.Uuid)); err != nil {
		return nil, err
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST, &raftv1.RegisterGuest{Guest: g})
	if err != nil {
		return nil, err
	}
	return &restorev1.RegisterGuestResponse{Guest: out.(*restorev1.Guest)}, nil
}

func (s *GuestService) visible(ctx context.Context, id string) (*restorev1.Guest, error) {
	if err := validate.Required("id", id); err != nil {
		return nil, err
	}
	g := s.Store.Read(nil).Guest(id)
	if g == nil || !principal(ctx).Sees(g.Tenant) {
		return nil, status.Errorf(codes.NotFound, "guest %q not found", id)
	}
	return g, nil
}

// GetGuest implements the RPC.
func (s *GuestService) GetGuest(ctx context.Context, req *restorev1.GetGuestRequest) (*restorev1.GetGuestResponse, error) {
	g, err := s.visible(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return &restorev1.GetGuestResponse{Guest: g}, nil
}

// ListGuests implements the RPC.
func (s *GuestService) ListGuests(ctx context.Context, _ *restorev1.ListGuestsRequest) (*restorev1.ListGuestsResponse, error) {
	return &restorev1.ListGuestsResponse{Guests: s.Store.Read(nil).Guests(principal(ctx).Scope())}, nil
}

// UnregisterGuest implements the RPC.
func (s *GuestService) UnregisterGuest(ctx context.Context, req *restorev1.UnregisterGuestRequest) (*restorev1.UnregisterGuestResponse, error) {
	g, err := s.visible(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_UNREGISTER_GUEST, &raftv1.UnregisterGuest{Id: g.Id}); err != nil {
		return nil, err
	}
	return &restorev1.UnregisterGuestResponse{}, nil
}
