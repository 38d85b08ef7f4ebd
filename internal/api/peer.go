package api

import (
	"context"
	"crypto/x509"

	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/mdkeys"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// peerCert is the caller's TLS certificate (its chain was checked against
// the cluster CA, and its revocation, in the handshake) with the identity
// it carries; ok is false for a caller without one.
func peerCert(ctx context.Context) (*x509.Certificate, pki.Identity, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, pki.Identity{}, false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil, pki.Identity{}, false
	}
	cert := info.State.PeerCertificates[0]
	id, err := pki.IdentityOf(cert)
	return cert, id, err == nil
}

// requireServerCert refuses a caller that is not a server of this cluster
// (server-only RPCs refuse agents and callers without a certificate).
func requireServerCert(ctx context.Context, method string) error {
	_, id, ok := peerCert(ctx)
	switch {
	case !ok:
		return status.Errorf(codes.PermissionDenied, "%s is for servers of this cluster: present a server certificate", method)
	case id.Role != pki.RoleServer:
		return status.Errorf(codes.PermissionDenied, "%s is for servers of this cluster: a %s certificate (%s) may not call it", method, id.Role, id.Name)
	}
	return nil
}

type vouchedKey struct{}

// withVouchedHost marks a call this server forwards for an agent it
// authenticated: the leader takes the host from the forwarded metadata.
func withVouchedHost(ctx context.Context, host string) context.Context {
	return context.WithValue(ctx, vouchedKey{}, host)
}

func vouchedHost(ctx context.Context) string { h, _ := ctx.Value(vouchedKey{}).(string); return h }

// agentPrincipal authenticates an agent by its certificate: the host it
// names, unless its host's certificates were revoked since it was issued.
// A call another server forwarded carries the host that server vouched for,
// and only a server's certificate is believed on that.
func (d *Deps) agentPrincipal(ctx context.Context) (*auth.Principal, error) {
	cert, id, ok := peerCert(ctx)
	switch {
	case ok && id.Role == pki.RoleAgent:
		if d.Store.Read(nil).AgentCertRevoked(id.Name, cert) {
			return nil, status.Errorf(codes.Unauthenticated, "the certificate of host %s was revoked (the host was removed): enroll again with a new join token", id.Name)
		}
		return &auth.Principal{Role: auth.RoleAgent, Host: id.Name, CertIssued: cert.NotBefore}, nil
	case ok && id.Role == pki.RoleServer && wasForwarded(ctx):
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get(mdkeys.AgentHost); len(v) == 1 && v[0] != "" {
			return &auth.Principal{Role: auth.RoleAgent, Host: v[0]}, nil
		}
	}
	return nil, status.Error(codes.Unauthenticated, "AgentService takes the agent's certificate: enroll the agent with a join token (restorectl host join-token HOST, hypervisor-agent --join-token)")
}

// agentRevoked says whether an agent principal's certificate was revoked
// since it authenticated (streams check it as the state changes).
func (d *Deps) agentRevoked(r *store.Reader, p *auth.Principal) bool {
	if p.Host == "" || p.CertIssued.IsZero() {
		return false
	}
	v := r.Revocation(p.Host)
	return v != nil && pki.RevokedBy(p.CertIssued, v.RevokeTime.AsTime())
}
