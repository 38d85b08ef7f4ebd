package api

import (
	"context"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/pki"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// issueAgent signs an agent certificate for host from a CSR.
func (d *Deps) issueAgent(csr []byte, host string) ([]byte, error) {
	if d.CA == nil || !d.CA.CanIssue() {
		return nil, status.Error(codes.FailedPrecondition, "this server cannot issue certificates (it has the cluster CA without its key)")
	}
	now := d.Now()
	if v := d.Store.Read(nil).Revocation(host); v != nil && now.Before(pki.IssueAfter(v.RevokeTime.AsTime())) {
		now = pki.IssueAfter(v.RevokeTime.AsTime()) // a host enrolled again right after its removal
	}
	cert, err := d.CA.IssueCSR(csr, pki.Identity{Role: pki.RoleAgent, Name: host}, nil, pki.AgentLifetime, now)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	return append(pki.EncodeCert(cert), pki.EncodeCert(d.CA.Cert)...), nil
}

// Enroll implements the RPC: the join token is spent through raft (two
// agents racing with one token: one wins), then the certificate is issued.
func (s *AgentService) Enroll(ctx context.Context, req *restorev1.EnrollRequest) (*restorev1.EnrollResponse, error) {
	t, err := auth.FindJoinToken(s.Store.Read(nil), req.JoinToken)
	if err != nil {
		s.Log.Warn("agent enrollment refused: unknown join token") // never the secret
		return nil, err
	}
	use := &raftv1.UseJoinToken{Id: t.Token.Id, Time: timestamppb.New(s.Now())}
	if err := fsm.JoinTokenRefused(t, use); err != nil {
		s.Log.Warn("agent enrollment refused", "join_token", t.Token.Id, "host", t.Token.HostId, "err", err)
		return nil, err
	}
	if len(req.Csr) == 0 {
		return nil, status.Error(codes.InvalidArgument, "csr is required: a PKCS #10 request signed by the agent's new key")
	}
	// Issued first (a bad request spends nothing), handed over only once
	// the token is spent.
	cert, err := s.issueAgent(req.Csr, t.Token.HostId)
	if err != nil {
		return nil, err
	}
	if _, err := s.apply(ctx, raftv1.CommandType_COMMAND_TYPE_USE_JOIN_TOKEN, use); err != nil {
		return nil, err
	}
	s.Log.Info("an agent enrolled", "host", t.Token.HostId, "join_token", t.Token.Id)
	return &restorev1.EnrollResponse{CaCert: pki.EncodeCert(s.CA.Cert), Cert: cert, HostId: t.Token.HostId}, nil
}

// RenewCertificate implements the RPC for the host the caller's
// certificate names.
func (s *AgentService) RenewCertificate(ctx context.Context, req *restorev1.RenewCertificateRequest) (*restorev1.RenewCertificateResponse, error) {
	p := principal(ctx)
	cert, err := s.issueAgent(req.Csr, p.Host)
	if err != nil {
		return nil, err
	}
	s.Log.Info("renewed an agent's certificate", "host", p.Host)
	return &restorev1.RenewCertificateResponse{Cert: cert}, nil
}
