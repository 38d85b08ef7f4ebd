// Package agentid owns a hypervisor agent's identity: the first
// enrollment (a one-time join token and a CSR, over TLS pinned to the
// cluster CA by fingerprint), the certificate it keeps in <work-dir>/tls,
// the TLS it dials servers with, and renewal. The agent and the tests'
// stand-in agents share it.
package agentid

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Identity is an agent's certificate and the CA it trusts, kept in
// <work-dir>/tls (key 0600) and renewed in place.
type Identity struct {
	Host   string
	Keeper *pki.Keeper
	CA     *pki.CA
	Files  pki.Files
}

// EnrollOptions say how an agent gets its certificate the first time.
type EnrollOptions struct {
	// Server is a restored gRPC address.
	Server string
	// JoinToken is the one-time token (restorectl host join-token HOST).
	JoinToken string
	// CAFingerprint pins the cluster CA ("sha256:…"); CACert, when set
	// instead, is the CA's certificate file.
	CAFingerprint, CACert string
	// Dir is where the certificate is kept.
	Dir string
	Log *slog.Logger
}

// LoadIdentity reads a kept certificate from dir, or reports
// os.ErrNotExist.
func LoadIdentity(dir string) (*Identity, error) {
	f := pki.Files{Dir: dir}
	if _, err := os.Stat(f.Cert()); err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(f.CA(), "")
	if err != nil {
		return nil, err
	}
	cert, err := os.ReadFile(f.Cert())
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(f.Key())
	if err != nil {
		return nil, err
	}
	k, err := pki.NewKeeper(cert, key)
	if err != nil {
		return nil, fmt.Errorf("the agent's certificate in %s: %w", dir, err)
	}
	id, err := pki.IdentityOf(k.Leaf())
	if err != nil || id.Role != pki.RoleAgent {
		return nil, fmt.Errorf("%s holds no agent certificate", f.Cert())
	}
	return &Identity{Host: id.Name, Keeper: k, CA: ca, Files: f}, nil
}

// Enroll presents the join token and a CSR and keeps the certificate the
// cluster issues. The first contact's TLS pins the CA by fingerprint (or
// trusts the CA file given).
func Enroll(ctx context.Context, o EnrollOptions) (*Identity, error) {
	var base *tls.Config
	switch {
	case o.CAFingerprint != "":
		base = pki.PinnedConfig(o.CAFingerprint, func(*x509.Certificate) {})
	case o.CACert != "":
		var err error
		if base, err = pki.DialConfig(o.CACert, o.Server, nil); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("enrolling needs the cluster CA: --ca-fingerprint (shown by restorectl host join-token) or --ca-cert")
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(key, pki.Identity{Role: pki.RoleAgent, Name: "enrolling"})
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(o.Server, grpc.WithTransportCredentials(credentials.NewTLS(base)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var resp *restorev1.EnrollResponse
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		resp, err = restorev1.NewAgentServiceClient(conn).Enroll(cctx, &restorev1.EnrollRequest{JoinToken: o.JoinToken, Csr: csr})
		cancel()
		if err == nil || status.Code(err) != codes.Unavailable || ctx.Err() != nil || attempt == 30 {
			break
		}
		if o.Log != nil {
			o.Log.Warn("enrollment: the server is not reachable yet; retrying", "server", o.Server, "err", err)
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return nil, fmt.Errorf("enroll with %s: %w", o.Server, err)
	}
	ca, err := pki.LoadCAFromPEM(resp.CaCert, nil)
	if err != nil {
		return nil, err
	}
	if o.CAFingerprint != "" && ca.Fingerprint() != o.CAFingerprint {
		return nil, errors.New("the cluster sent a CA other than the one pinned: refusing it")
	}
	f := pki.Files{Dir: o.Dir}
	kp, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	for _, w := range []struct {
		path   string
		data   []byte
		secret bool
	}{{f.CA(), resp.CaCert, false}, {f.Key(), kp, true}, {f.Cert(), resp.Cert, false}} {
		if err := pki.Write(w.path, w.data, w.secret); err != nil {
			return nil, err
		}
	}
	return LoadIdentity(o.Dir)
}

// DialConfig is the TLS of a session with a server: the agent's
// certificate, the server's checked against the CA and its address.
func (id *Identity) DialConfig(server string) *tls.Config {
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		host = server
	}
	return pki.ClientConfig(id.CA.Pool(), id.Keeper, host, pki.Peer{})
}

// Renew asks for a new certificate with a new key and keeps it.
func (id *Identity) Renew(ctx context.Context, client restorev1.AgentServiceClient) error {
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, pki.Identity{Role: pki.RoleAgent, Name: id.Host})
	if err != nil {
		return err
	}
	resp, err := client.RenewCertificate(ctx, &restorev1.RenewCertificateRequest{Csr: csr})
	if err != nil {
		return err
	}
	kp, err := pki.EncodeKey(key)
	if err != nil {
		return err
	}
	if err := pki.Write(id.Files.Key()+".renewed", kp, true); err != nil {
		return err
	}
	if err := id.Keeper.Set(resp.Cert, kp); err != nil {
		return err
	}
	if err := pki.Write(id.Files.Cert(), resp.Cert, false); err != nil {
		return err
	}
	return os.Rename(id.Files.Key()+".renewed", id.Files.Key())
}
