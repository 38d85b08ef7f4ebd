package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/go-memdb"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// AgentService implements restore.v1.AgentService.
type AgentService struct {
	restorev1.UnimplementedAgentServiceServer
	*Deps
}

// checkAgent checks an agent's protocol and that it acts for the host its
// certificate names, and no other.
func checkAgent(ctx context.Context, protocol uint32, hostID string) error {
	if protocol != version.AgentProtocol {
		return status.Errorf(codes.FailedPrecondition,
			"agent protocol version %d is not supported; this server speaks version %d: upgrade the agent or the server", protocol, version.AgentProtocol)
	}
	if err := validate.DNSLabel("host_id", hostID); err != nil {
		return err
	}
	if p := principal(ctx); p.Host != hostID {
		return status.Errorf(codes.PermissionDenied, "this agent's certificate is for host %q: it may not act for host %q", p.Host, hostID)
	}
	return nil
}

func (s *AgentService) knownHost(id string) (*restorev1.Host, error) {
	h := s.Store.Read(nil).Host(id)
	if h == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "host %q is not registered; call Register first", id)
	}
	return h, nil
}

// Register implements the RPC.
func (s *AgentService) Register(ctx context.Context, req *restorev1.RegisterRequest) (*restorev1.RegisterResponse, error) {
	if err := checkAgent(ctx, req.ProtocolVersion, req.HostId); err != nil {
		return nil, err
	}
	if req.Capacity == nil || req.Capacity.Vcpus <= 0 || req.Capacity.MemoryMib <= 0 {
		return nil, validate.Errorf("capacity must offer at least 1 vCPU and 1 MiB of memory")
	}
	for _, f := range []struct{ name, v string }{
		{"agent_version", req.AgentVersion}, {"accelerator", req.Accelerator}, {"accelerator_note", req.AcceleratorNote},
	} {
		if err := validate.Optional(f.name, f.v); err != nil {
			return nil, err
		}
	}
	for _, h := range req.Hypervisors {
		if err := validate.Required("hypervisors", h); err != nil {
			return nil, err
		}
	}
	if err := checkBridges(req.Bridges); err != nil {
		return nil, err
	}
	host := &restorev1.Host{
		Id: req.HostId, Hypervisors: req.Hypervisors, Accelerator: req.Accelerator,
		AcceleratorNote: req.AcceleratorNote, Capacity: req.Capacity, AgentVersion: req.AgentVersion,
		RegisterTime: timestamppb.New(s.Now()), ServerId: s.agentServer(ctx), Bridges: req.Bridges,
		Capabilities: reportedCapabilities(req.Capabilities),
	}
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST, &raftv1.RegisterHost{Host: host}); err != nil {
		return nil, err
	}
	s.Beats.Beat(req.HostId)
	return &restorev1.RegisterResponse{
		ProtocolVersion:     version.AgentProtocol,
		ServerVersion:       s.Version,
		HeartbeatIntervalMs: s.HeartbeatInterval.Milliseconds(),
		HeartbeatTtlMs:      s.HeartbeatTTL.Milliseconds(),
		Servers:             s.serverAddresses(),
	}, nil
}

// agentServer is the server the agent is connected to: this one, or the
// follower that forwarded its call (and vouched for its certificate).
func (s *AgentService) agentServer(ctx context.Context) string {
	if _, id, ok := peerCert(ctx); ok && id.Role == pki.RoleServer {
		if by := forwardedBy(ctx); by != "" {
			return by
		}
	}
	return s.ServerID
}

// serverAddresses are the gRPC addresses of the cluster's servers, which
// agents fail over to and balance across.
func (s *AgentService) serverAddresses() []string {
	var out []string
	for _, srv := range s.Store.Read(nil).Servers() {
		if srv.GrpcAddress != "" {
			out = append(out, srv.GrpcAddress)
		}
	}
	return out
}

// Heartbeat implements the RPC. It writes to raft only when a DOWN host
// comes back.
func (s *AgentService) Heartbeat(ctx context.Context, req *restorev1.HeartbeatRequest) (*restorev1.HeartbeatResponse, error) {
	if err := checkAgent(ctx, req.ProtocolVersion, req.HostId); err != nil {
		return nil, err
	}
	h := s.Store.Read(nil).Host(req.HostId)
	if h == nil {
		return &restorev1.HeartbeatResponse{Registered: false}, nil
	}
	s.Beats.Beat(req.HostId)
	if h.State == restorev1.HostState_HOST_STATE_DOWN {
		if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_SET_HOST_STATE, &raftv1.SetHostState{
			Id: req.HostId, State: restorev1.HostState_HOST_STATE_READY, Time: timestamppb.New(s.Now()), Reason: "heartbeat resumed",
		}); err != nil {
			return nil, err
		}
	}
	return &restorev1.HeartbeatResponse{Registered: true, Servers: s.serverAddresses()}, nil
}

// Assignments computes a host's desired state.
func Assignments(r *store.Reader, hostID string) []*restorev1.Assignment {
	var out []*restorev1.Assignment
	for _, x := range r.AssignedRestores(hostID) {
		if d, ok := lifecycle.Desired(x); ok {
			out = append(out, &restorev1.Assignment{Restore: x, Desired: d})
		}
	}
	return out
}

func assignmentsKey(as []*restorev1.Assignment) string {
	k := ""
	for _, a := range as {
		k += fmt.Sprintf("%s@%d/%d;", a.Restore.Id, a.Restore.Revision, a.Desired)
	}
	return k
}

// WatchAssignments implements the RPC.
func (s *AgentService) WatchAssignments(req *restorev1.WatchAssignmentsRequest, stream restorev1.AgentService_WatchAssignmentsServer) error {
	ctx := stream.Context()
	if err := checkAgent(ctx, req.ProtocolVersion, req.HostId); err != nil {
		return err
	}
	p := principal(ctx)
	last := "\x00"
	for {
		ws := memdb.NewWatchSet()
		r := s.Store.Read(ws)
		if s.agentRevoked(r, p) {
			return status.Errorf(codes.Unauthenticated, "host %s was removed: its certificate is revoked", req.HostId)
		}
		as, ss := Assignments(r, req.HostId), SnapshotAssignments(r, req.HostId)
		if k := assignmentsKey(as) + snapshotAssignmentsKey(ss); k != last {
			if err := stream.Send(&restorev1.WatchAssignmentsResponse{Assignments: as, Snapshots: ss}); err != nil {
				return err
			}
			last = k
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// ReportRestoreStatus implements the RPC.
func (s *AgentService) ReportRestoreStatus(ctx context.Context, req *restorev1.ReportRestoreStatusRequest) (*restorev1.ReportRestoreStatusResponse, error) {
	if err := checkAgent(ctx, req.ProtocolVersion, req.HostId); err != nil {
		return nil, err
	}
	if err := validate.Required("restore_id", req.RestoreId); err != nil {
		return nil, err
	}
	if err := validate.Optional("state_reason", req.StateReason); err != nil {
		return nil, err
	}
	if !lifecycle.AgentMayReport(req.State) {
		return nil, validate.Errorf("an agent may report PREPARING, BOOTING, RUNNING, PAUSED, FAILED, DESTROYED, PROMOTING or PROMOTED, not %s", req.State)
	}
	if p := req.Progress; p != nil {
		switch {
		case req.State != lifecycle.Preparing && req.State != lifecycle.Promoting:
			return nil, validate.Errorf("progress goes with a PREPARING or PROMOTING report, not %s", req.State)
		case p.DoneBytes < 0 || p.TotalBytes < 0 || p.BytesPerSecond < 0 || p.EtaSeconds < 0 || p.DoneBytes > p.TotalBytes:
			return nil, validate.Errorf("progress: %d of %d bytes at %d B/s, %d s left is not a progress", p.DoneBytes, p.TotalBytes, p.BytesPerSecond, p.EtaSeconds)
		case len(p.Step) > 200:
			return nil, validate.Errorf("progress.step has %d bytes (at most 200)", len(p.Step))
		}
	}
	if e := req.Export; e != nil {
		if req.State != lifecycle.Running {
			return nil, validate.Errorf("an export goes with a RUNNING report, not %s", req.State)
		}
		if err := checkGateCA("export.nbd_ca_cert", e.NbdCaCert); err != nil {
			return nil, err
		}
		if len(e.Disks) > maxDomainDisks {
			return nil, validate.Errorf("export lists %d disks (at most %d)", len(e.Disks), maxDomainDisks)
		}
	}
	if p := req.Promotion; p != nil && (req.State != lifecycle.Promoted || len(p.DiskPaths) == 0 || len(p.DiskPaths) > maxDomainDisks || p.Domain == "") {
		return nil, validate.Errorf("a promotion (a domain and 1 to %d disk paths) goes with a PROMOTED report", maxDomainDisks)
	}
	if err := checkImage(req); err != nil {
		return nil, err
	}
	x := s.Store.Read(nil).Restore(req.RestoreId)
	if x == nil {
		return nil, status.Errorf(codes.NotFound, "restore %q not found", req.RestoreId)
	}
	if x.Mode != restorev1.Mode_MODE_EXPORT && req.Export != nil {
		return nil, validate.Errorf("restore %s is %s, not an EXPORT", x.Id, x.Mode)
	}
	if x.Mode != restorev1.Mode_MODE_IMAGE && req.Image != nil {
		return nil, validate.Errorf("restore %s is %s, not an IMAGE", x.Id, x.Mode)
	}
	if x.HostId != req.HostId {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is not assigned to host %s", req.RestoreId, req.HostId)
	}
	if _, ok := lifecycle.AgentReport(x.State, req.State); !ok {
		return nil, fsm.ReportRefused(x, req.State)
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS,
		&raftv1.ReportRestoreStatus{Report: &raftv1.RestoreReport{
			HostId: req.HostId, RestoreId: req.RestoreId, State: req.State, StateReason: req.StateReason,
			Boot: req.Boot, Verification: req.Verification, Progress: req.Progress, Export: req.Export, Image: req.Image, Promotion: req.Promotion,
		}, Time: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	return &restorev1.ReportRestoreStatusResponse{Restore: out.(*restorev1.Restore)}, nil
}

// ReportRecoveryPoints implements the RPC.
func (s *AgentService) ReportRecoveryPoints(ctx context.Context, req *restorev1.ReportRecoveryPointsRequest) (*restorev1.ReportRecoveryPointsResponse, error) {
	if err := checkAgent(ctx, req.ProtocolVersion, req.HostId); err != nil {
		return nil, err
	}
	if _, err := s.knownHost(req.HostId); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	rps := make([]*restorev1.RecoveryPoint, 0, len(req.RecoveryPoints))
	for i, rp := range req.RecoveryPoints {
		if err := validate.Required(fmt.Sprintf("recovery_points[%d].id", i), rp.Id); err != nil {
			return nil, err
		}
		if seen[rp.Id] {
			return nil, validate.Errorf("recovery point %q is listed twice", rp.Id)
		}
		seen[rp.Id] = true
		if err := validate.DNSLabel(fmt.Sprintf("recovery_points[%d].tenant", i), rp.Tenant); err != nil {
			return nil, err
		}
		if err := validate.Required(fmt.Sprintf("recovery_points[%d].asset", i), rp.Asset); err != nil {
			return nil, err
		}
		if err := validate.Optional(fmt.Sprintf("recovery_points[%d].invalid_reason", i), rp.InvalidReason); err != nil {
			return nil, err
		}
		c := proto.Clone(rp).(*restorev1.RecoveryPoint)
		c.HostIds = nil
		rps = append(rps, c)
	}
	if err := validate.Optional("scan_id", req.ScanId); err != nil {
		return nil, err
	}
	if req.More && req.ScanId == "" {
		return nil, validate.Errorf("more needs a scan_id naming the scan its parts belong to")
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS,
		&raftv1.ReportRecoveryPoints{HostId: req.HostId, RecoveryPoints: rps, ScanId: req.ScanId, More: req.More})
	if err != nil {
		return nil, err
	}
	return out.(*restorev1.ReportRecoveryPointsResponse), nil
}

// reportedCapabilities are the ones this server knows, in order; an agent
// that reports none is from before capabilities were reported: a KVM agent
// with all of KVM's.
func reportedCapabilities(ws []restorev1.HostCapability) []restorev1.HostCapability {
	if len(ws) == 0 {
		return hypervisor.KVMSet.Wire()
	}
	return hypervisor.FromWire(ws).Wire()
}

// Tunnel implements the RPC: the host's agent keeps it open and this server
// opens channels on it (screenshots, consoles).
func (s *AgentService) Tunnel(stream restorev1.AgentService_TunnelServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetFrame().GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "a tunnel starts with a hello frame")
	}
	if err := checkAgent(stream.Context(), hello.ProtocolVersion, hello.HostId); err != nil {
		return err
	}
	if _, err := s.knownHost(hello.HostId); err != nil {
		return err
	}
	s.Log.Info("tunnel open", "host", hello.HostId)
	defer s.Log.Info("tunnel closed", "host", hello.HostId)
	err = s.Tunnels.Serve(hello.HostId, func() (*restorev1.TunnelFrame, error) {
		req, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return req.GetFrame(), nil
	}, func(f *restorev1.TunnelFrame) error {
		return stream.Send(&restorev1.TunnelResponse{Frame: f})
	})
	if stream.Context().Err() != nil {
		return nil
	}
	return err
}

// checkImage refuses an IMAGE restore's files that are not files: a
// report names each disk once, with a plain file name and a size.
func checkImage(req *restorev1.ReportRestoreStatusRequest) error {
	im := req.Image
	if im == nil {
		return nil
	}
	if req.State != lifecycle.Running {
		return validate.Errorf("an image goes with a RUNNING report, not %s", req.State)
	}
	if _, ok := kinds.ImageFormatFromAPI(im.Format); !ok {
		return validate.Errorf("image.format %s is not an image format", im.Format)
	}
	if len(im.Files) == 0 || len(im.Files) > maxDomainDisks {
		return validate.Errorf("image lists %d files (1 to %d)", len(im.Files), maxDomainDisks)
	}
	seen := map[string]bool{}
	for i, f := range im.Files {
		switch {
		case f.Disk == "" || seen[f.Disk]:
			return validate.Errorf("image.files[%d]: disk %q is empty or named twice", i, f.Disk)
		case f.FileName == "" || len(f.FileName) > 255 || strings.ContainsAny(f.FileName, "/\\\"\x00\r\n") || strings.HasPrefix(f.FileName, "."):
			return validate.Errorf("image.files[%d]: %q is not a plain file name", i, f.FileName)
		case f.SizeBytes <= 0:
			return validate.Errorf("image.files[%d]: size %d", i, f.SizeBytes)
		case len(f.Sha256) != 64 || strings.Trim(f.Sha256, "0123456789abcdef") != "":
			return validate.Errorf("image.files[%d]: sha256 %q is not 64 hex digits", i, f.Sha256)
		}
		seen[f.Disk] = true
	}
	return nil
}
