package api

import (
	"context"

	"github.com/restored/restored/internal/pki"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// peerIdentity is the identity the caller's TLS certificate carries (its
// chain was checked against the cluster CA in the handshake); ok is false
// for a caller without a certificate.
func peerIdentity(ctx context.Context) (pki.Identity, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return pki.Identity{}, false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return pki.Identity{}, false
	}
	id, err := pki.IdentityOf(info.State.PeerCertificates[0])
	return id, err == nil
}

// checkCert refuses a caller whose certificate does not carry the role
// the method asks for (server-only RPCs refuse agents and callers without
// a certificate).
func checkCert(ctx context.Context, method string) error {
	want := certRole(method)
	if want == "" {
		return nil
	}
	id, ok := peerIdentity(ctx)
	switch {
	case !ok:
		return status.Errorf(codes.PermissionDenied, "%s is for servers of this cluster: present a server certificate", method)
	case id.Role != want:
		return status.Errorf(codes.PermissionDenied, "%s is for servers of this cluster: a %s certificate (%s) may not call it", method, id.Role, id.Name)
	}
	return nil
}
