package api

import (
	"context"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/pki"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxReaderCredential bounds a snapshot's or an export's credential's
// life, whatever its lease or TTL.
const maxReaderCredential = 24 * time.Hour

// readerCredential is a client certificate for one snapshot's or export's
// NBD endpoints on its host's gate (identity role and the object's id),
// valid until until (at most a day): what the gate serves it, and nothing
// else.
type readerCredential struct {
	CACert, Cert, Key string
	Expire            time.Time
}

func (d *Deps) issueReader(role pki.Role, what, id, tenant, gateCA string, until time.Time) (readerCredential, error) {
	if gateCA == "" {
		return readerCredential{}, status.Errorf(codes.FailedPrecondition, "%s %s's host did not report its NBD gate (an agent older than this server?)", what, id)
	}
	if d.CA == nil || !d.CA.CanIssue() {
		return readerCredential{}, status.Error(codes.FailedPrecondition, "this server cannot issue certificates (it has the cluster CA without its key)")
	}
	now := d.Now()
	lifetime := min(until.Sub(now), maxReaderCredential)
	if lifetime <= 0 {
		return readerCredential{}, status.Errorf(codes.FailedPrecondition, "%s %s's lease ran out", what, id)
	}
	key, err := pki.NewKey()
	if err != nil {
		return readerCredential{}, status.Errorf(codes.Internal, "key: %v", err)
	}
	cert, err := d.CA.Issue(pki.Request{Identity: pki.Identity{Role: role, Name: id}, Public: key.Public(), Lifetime: lifetime, Now: now})
	if err != nil {
		return readerCredential{}, status.Errorf(codes.Internal, "certificate: %v", err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return readerCredential{}, status.Errorf(codes.Internal, "key: %v", err)
	}
	d.Log.Info("issued NBD credentials", "for", what, "id", id, "tenant", tenant, "expires", cert.NotAfter.UTC().Format(time.RFC3339)) // never the key
	// The gate's CA, then the cluster CA that issued the client certificate
	// (QEMU checks its own certificate against the file).
	return readerCredential{CACert: gateCA + string(pki.EncodeCert(d.CA.Cert)), Cert: string(pki.EncodeCert(cert)), Key: string(keyPEM), Expire: cert.NotAfter}, nil
}

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
	c, err := s.issueReader(pki.RoleSnapshot, "snapshot", x.Id, x.Tenant, x.NbdCaCert, x.GetLeaseExpireTime().AsTime())
	if err != nil {
		return nil, err
	}
	return &restorev1.IssueSnapshotCredentialsResponse{CaCert: c.CACert, Cert: c.Cert, Key: c.Key, ExpireTime: timestamppb.New(c.Expire)}, nil
}

// IssueRestoreCredentials implements the RPC: a client certificate whose
// identity is the EXPORT restore, valid until its TTL ends.
func (s *RestoreService) IssueRestoreCredentials(ctx context.Context, req *restorev1.IssueRestoreCredentialsRequest) (*restorev1.IssueRestoreCredentialsResponse, error) {
	x, err := visibleRestore(s.Store.Read(nil), principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	switch {
	case x.Mode != restorev1.Mode_MODE_EXPORT:
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is %s: credentials are for EXPORT restores", x.Id, x.Mode)
	case x.State != lifecycle.Running || x.Export == nil:
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is %s: credentials are issued once its export is RUNNING", x.Id, x.State)
	}
	if x.Export.Protocol == restorev1.ExportProtocol_EXPORT_PROTOCOL_ISCSI {
		return s.issueCHAP(ctx, x)
	}
	c, err := s.issueReader(pki.RoleExport, "export", x.Id, x.Tenant, x.Export.NbdCaCert, x.GetExpireTime().AsTime())
	if err != nil {
		return nil, err
	}
	return &restorev1.IssueRestoreCredentialsResponse{CaCert: c.CACert, Cert: c.Cert, Key: c.Key, ExpireTime: timestamppb.New(c.Expire)}, nil
}

// issueCHAP asks the host of an iSCSI export for a new CHAP secret (its
// target takes it at once; the one before stops working) and passes it
// on: the server keeps nothing.
func (s *RestoreService) issueCHAP(ctx context.Context, x *restorev1.Restore) (*restorev1.IssueRestoreCredentialsResponse, error) {
	data, err := s.fetch(ctx, x.HostId, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_CHAP, RestoreId: x.Id})
	if err != nil {
		return nil, err
	}
	user, secret, ok := strings.Cut(string(data), " ")
	if !ok || user != x.Export.ChapUser || secret == "" {
		return nil, status.Errorf(codes.Unavailable, "host %s answered no CHAP secret for restore %s", x.HostId, x.Id)
	}
	s.Log.Info("CHAP secret issued", "restore", x.Id) // never the secret
	return &restorev1.IssueRestoreCredentialsResponse{ChapUser: user, ChapSecret: secret, ExpireTime: x.ExpireTime}, nil
}
