package api

import (
	"context"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// HostService implements restore.v1.HostService.
type HostService struct {
	restorev1.UnimplementedHostServiceServer
	*Deps
}

func withAllocation(r *store.Reader, h *restorev1.Host) *restorev1.Host {
	if h.Allocated != nil {
		return h
	}
	out := proto.Clone(h).(*restorev1.Host)
	out.Allocated = r.Allocated(h.Id)
	return out
}

// ListHosts implements the RPC.
func (s *HostService) ListHosts(context.Context, *restorev1.ListHostsRequest) (*restorev1.ListHostsResponse, error) {
	r := s.Store.Read(nil)
	out := &restorev1.ListHostsResponse{}
	for _, h := range r.Hosts() {
		out.Hosts = append(out.Hosts, withAllocation(r, h))
	}
	return out, nil
}

// WatchHosts implements the RPC: every host, then each change (its state,
// drain, capacity in use, recovery points, removal).
func (s *HostService) WatchHosts(req *restorev1.WatchHostsRequest, stream restorev1.HostService_WatchHostsServer) error {
	return runWatch(s.Deps, stream, req, watchSpec[*restorev1.Host]{
		kind:    store.KindHost,
		list:    func(r *store.Reader) []*restorev1.Host { return r.Hosts() },
		match:   func(*store.Reader, *restorev1.Host) bool { return true },
		present: withAllocation,
		send: func(typ restorev1.WatchEventType, rv store.Version, h *restorev1.Host) error {
			return stream.Send(&restorev1.WatchHostsResponse{Host: h, Type: typ, ResourceVersion: rv.String()})
		},
	})
}

func (s *HostService) host(id string) (*restorev1.Host, error) {
	if err := validate.Required("id", id); err != nil {
		return nil, err
	}
	r := s.Store.Read(nil)
	h := r.Host(id)
	if h == nil {
		return nil, status.Errorf(codes.NotFound, "host %q not found", id)
	}
	return withAllocation(r, h), nil
}

// GetHost implements the RPC.
func (s *HostService) GetHost(_ context.Context, req *restorev1.GetHostRequest) (*restorev1.GetHostResponse, error) {
	h, err := s.host(req.Id)
	if err != nil {
		return nil, err
	}
	return &restorev1.GetHostResponse{Host: h}, nil
}

func (s *HostService) setDrain(ctx context.Context, id string, drained bool) (*restorev1.Host, error) {
	h, err := s.host(id)
	if err != nil {
		return nil, err
	}
	if h.Drained == drained {
		return h, nil
	}
	out, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_SET_HOST_DRAIN,
		&raftv1.SetHostDrain{Id: id, Drained: drained, Time: timestamppb.New(s.Now())})
	if err != nil {
		return nil, err
	}
	return withAllocation(s.Store.Read(nil), out.(*restorev1.Host)), nil
}

// DrainHost implements the RPC.
func (s *HostService) DrainHost(ctx context.Context, req *restorev1.DrainHostRequest) (*restorev1.DrainHostResponse, error) {
	h, err := s.setDrain(ctx, req.Id, true)
	if err != nil {
		return nil, err
	}
	return &restorev1.DrainHostResponse{Host: h}, nil
}

// UndrainHost implements the RPC.
func (s *HostService) UndrainHost(ctx context.Context, req *restorev1.UndrainHostRequest) (*restorev1.UndrainHostResponse, error) {
	h, err := s.setDrain(ctx, req.Id, false)
	if err != nil {
		return nil, err
	}
	return &restorev1.UndrainHostResponse{Host: h}, nil
}
