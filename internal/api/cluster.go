package api

import (
	"context"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ClusterService implements the internal restored.raft.v1.ClusterService.
type ClusterService struct {
	raftv1.UnimplementedClusterServiceServer
	*Deps
}

// Join adds a server as a voter and records its gRPC address.
func (s *ClusterService) Join(_ context.Context, req *raftv1.JoinRequest) (*raftv1.JoinResponse, error) {
	srv := req.GetServer()
	if srv == nil {
		return nil, validate.Errorf("server is required")
	}
	for _, f := range []struct{ name, v string }{{"server.id", srv.Id}, {"server.raft_address", srv.RaftAddress}, {"server.grpc_address", srv.GrpcAddress}} {
		if err := validate.Required(f.name, f.v); err != nil {
			return nil, err
		}
	}
	if err := s.Node.AddVoter(srv.Id, srv.RaftAddress, s.ApplyTimeout); err != nil {
		return nil, status.Errorf(codes.Unavailable, "add %s as a voter: %v", srv.Id, err)
	}
	reg := &restorev1.Server{Id: srv.Id, RaftAddress: srv.RaftAddress, GrpcAddress: srv.GrpcAddress}
	if _, err := s.apply(raftv1.CommandType_COMMAND_TYPE_REGISTER_SERVER, &raftv1.RegisterServer{Server: reg}); err != nil {
		return nil, err
	}
	leader, _ := s.Node.Leader()
	return &raftv1.JoinResponse{LeaderId: leader}, nil
}
