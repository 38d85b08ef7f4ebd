package api

import (
	"context"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/pki"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxSnapshotCredential bounds a snapshot credential's life, whatever the
// lease (which is at most 24 h anyway).
const maxSnapshotCredential = 24 * time.Hour

// IssueSnapshotCredentials implements the RPC: a client certificate whose
// identity is the snapshot (the host's NBD gate serves that snapshot's
// exports to it, and nothing else), valid until the lease runs out.
func (s *SnapshotService) IssueSnapshotCredentials(ctx context.Context, req *restorev1.IssueSnapshotCredentialsRequest) (*restorev1.IssueSnapshotCredentialsResponse, error) {
	x, err := visibleSnapshot(s.Store.Read(nil), ctx, req.Id)
	if err != nil {
		return nil, err
	}
	if !lifecycle.Readable(x) {
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s is %s: credentials are issued only while it is READY and not released", x.Id, x.State)
	}
	if x.NbdCaCert == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s's host %s did not report its NBD gate (an agent older than this server?)", x.Id, x.HostId)
	}
	if s.CA == nil || !s.CA.CanIssue() {
		return nil, status.Error(codes.FailedPrecondition, "this server cannot issue certificates (it has the cluster CA without its key)")
	}
	now := s.Now()
	lifetime := min(x.GetLeaseExpireTime().AsTime().Sub(now), maxSnapshotCredential)
	if lifetime <= 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s's lease ran out", x.Id)
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "key: %v", err)
	}
	cert, err := s.CA.Issue(pki.Request{Identity: pki.Identity{Role: pki.RoleSnapshot, Name: x.Id}, Public: key.Public(), Lifetime: lifetime, Now: now})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "certificate: %v", err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "key: %v", err)
	}
	s.Log.Info("issued snapshot credentials", "snapshot", x.Id, "tenant", x.Tenant, "expires", cert.NotAfter.UTC().Format(time.RFC3339)) // never the key
	return &restorev1.IssueSnapshotCredentialsResponse{
		// The gate's CA, then the cluster CA that issued the client
		// certificate (QEMU checks its own certificate against the file).
		CaCert: x.NbdCaCert + string(pki.EncodeCert(s.CA.Cert)), Cert: string(pki.EncodeCert(cert)), Key: string(keyPEM),
		ExpireTime: timestamppb.New(cert.NotAfter),
	}, nil
}
