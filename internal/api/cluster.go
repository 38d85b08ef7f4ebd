package api

import (
	"context"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/pki"
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
func (s *ClusterService) Join(ctx context.Context, req *raftv1.JoinRequest) (*raftv1.JoinResponse, error) {
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
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_REGISTER_SERVER, &raftv1.RegisterServer{Server: reg}); err != nil {
		return nil, err
	}
	leader, _ := s.Node.Leader()
	return &raftv1.JoinResponse{LeaderId: leader}, nil
}

// Enroll issues a joining server's certificate (see the RPC's doc).
func (s *ClusterService) Enroll(ctx context.Context, req *raftv1.EnrollRequest) (*raftv1.EnrollResponse, error) {
	if err := validate.DNSLabel("node_id", req.NodeId); err != nil {
		return nil, err
	}
	if len(req.Hosts) > 32 {
		return nil, validate.Errorf("hosts has %d entries; at most 32 are allowed", len(req.Hosts))
	}
	for i, h := range req.Hosts {
		if err := validate.Required(fmt.Sprintf("hosts[%d]", i), h); err != nil {
			return nil, err
		}
	}
	if s.CA == nil || !s.CA.CanIssue() {
		return nil, status.Error(codes.FailedPrecondition, "this server cannot issue certificates (it has the cluster CA without its key): join through a server that has it")
	}
	cert, err := s.CA.IssueCSR(req.Csr, pki.Identity{Role: pki.RoleServer, Name: req.NodeId}, req.Hosts, s.CertLifetime, s.Now())
	if err != nil {
		return nil, validate.Errorf("%v", err)
	}
	key, err := pki.EncodeKey(s.CA.Key)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode the CA key: %v", err)
	}
	s.Log.Info("issued a server certificate to a joining server", "node_id", req.NodeId, "expires", cert.NotAfter)
	return &raftv1.EnrollResponse{CaCert: pki.EncodeCert(s.CA.Cert), CaKey: key, Cert: append(pki.EncodeCert(cert), pki.EncodeCert(s.CA.Cert)...)}, nil
}
