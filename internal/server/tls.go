package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// certs are this server's TLS material: the cluster CA, its own
// certificate (kept, and renewed here when this server holds the CA's key
// and the certificate is its own, in <data-dir>/tls), and where they live.
type certs struct {
	ca       *pki.CA
	pool     *x509.CertPool
	keeper   *pki.Keeper
	files    pki.Files
	managed  bool
	id       pki.Identity
	hosts    []string
	lifetime time.Duration
	log      *slog.Logger
}

// TLSDir is where a server keeps its certificates, below its data dir.
func TLSDir(dataDir string) string { return filepath.Join(dataDir, "tls") }

// serverHosts are the names a server's certificate carries: loopback, the
// machine's name, and the addresses it listens on and advertises.
func serverHosts(cfg Config) []string {
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	if cfg.AdvertiseAddr != "" {
		hosts = append(hosts, cfg.AdvertiseAddr)
	}
	for _, a := range []string{cfg.GRPCAddr, cfg.HTTPAddr, cfg.RaftAddr} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// loadCerts finds or makes this server's certificates: the operator's
// files (--tls-ca, --tls-cert, --tls-key), else those in the data dir, else
// a new cluster CA (a first server) or an enrollment with the cluster it
// joins (which it must pin by --ca-fingerprint).
func loadCerts(cfg Config, nodeID string, log *slog.Logger) (*certs, error) {
	c := &certs{files: pki.Files{Dir: TLSDir(cfg.DataDir)}, id: pki.Identity{Role: pki.RoleServer, Name: nodeID},
		hosts: serverHosts(cfg), lifetime: cfg.CertLifetime, log: log}
	var err error
	switch {
	case cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSCA != "":
		if cfg.TLSCert == "" || cfg.TLSKey == "" || cfg.TLSCA == "" {
			return nil, errors.New("--tls-ca, --tls-cert and --tls-key go together")
		}
		if c.ca, err = pki.LoadCA(cfg.TLSCA, cfg.TLSCAKey); err != nil {
			return nil, err
		}
		if c.keeper, err = keeperFrom(cfg.TLSCert, cfg.TLSKey, c.ca); err != nil {
			return nil, err
		}
	case exists(c.files.Cert()):
		if c.ca, err = pki.LoadCA(c.files.CA(), c.files.CAKey()); err != nil {
			return nil, err
		}
		if c.keeper, err = keeperFrom(c.files.Cert(), c.files.Key(), c.ca); err != nil {
			return nil, err
		}
		c.managed = c.ca.CanIssue()
	case cfg.Join == "":
		if c.ca, err = pki.NewCA("Restored cluster CA ("+nodeID+")", time.Now()); err != nil {
			return nil, err
		}
		key, _ := pki.EncodeKey(c.ca.Key)
		if err := pki.Write(c.files.CAKey(), key, true); err != nil {
			return nil, err
		}
		if err := pki.Write(c.files.CA(), pki.EncodeCert(c.ca.Cert), false); err != nil {
			return nil, err
		}
		if err := c.issueOwn(); err != nil {
			return nil, err
		}
		c.managed = true
		log.Info("made a new cluster CA: joining servers and agents pin it by this fingerprint",
			"ca_fingerprint", c.ca.Fingerprint(), "ca_cert", c.files.CA())
	default:
		if err := c.enroll(cfg); err != nil {
			return nil, err
		}
		c.managed = true
	}
	if _, err := pki.IdentityOf(c.keeper.Leaf()); err != nil && !c.managed {
		log.Warn("the operator's server certificate carries no Restored identity; peers accept it by its CA only", "err", err)
	}
	c.pool = c.ca.Pool()
	log.Info("TLS", "ca_fingerprint", c.ca.Fingerprint(), "cert_expires", c.keeper.Leaf().NotAfter.UTC().Format(time.RFC3339), "issues", c.ca.CanIssue())
	return c, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// keeperFrom loads a certificate and key; the chain sent ends with the CA,
// so that a joining peer can pin it.
func keeperFrom(certPath, keyPath string, ca *pki.CA) (*pki.Keeper, error) {
	cert, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	leaf, err := pki.ParseCert(cert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		return nil, fmt.Errorf("%s is not signed by the cluster CA: %w", certPath, err)
	}
	if !bytes.Contains(cert, pki.EncodeCert(ca.Cert)) {
		cert = append(cert, pki.EncodeCert(ca.Cert)...)
	}
	return pki.NewKeeper(cert, key)
}

// issueOwn issues this server a certificate from the CA it holds and
// writes it.
func (c *certs) issueOwn() error {
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	cert, err := c.ca.Issue(pki.Request{Identity: c.id, Public: key.Public(), Hosts: c.hosts, Lifetime: c.lifetime, Now: time.Now()})
	if err != nil {
		return err
	}
	return c.install(append(pki.EncodeCert(cert), pki.EncodeCert(c.ca.Cert)...), key)
}

func (c *certs) install(certPEM []byte, key crypto.Signer) error {
	kp, err := pki.EncodeKey(key)
	if err != nil {
		return err
	}
	if err := pki.Write(c.files.Key(), kp, true); err != nil {
		return err
	}
	if err := pki.Write(c.files.Cert(), certPEM, false); err != nil {
		return err
	}
	if c.keeper == nil {
		c.keeper, err = pki.NewKeeper(certPEM, kp)
		return err
	}
	return c.keeper.Set(certPEM, kp)
}

// enroll asks the cluster being joined for this server's certificate, over
// TLS whose CA must have the fingerprint the operator gave.
func (c *certs) enroll(cfg Config) error {
	if cfg.CAFingerprint == "" {
		return errors.New("joining a cluster needs its CA's fingerprint (--ca-fingerprint sha256:…, printed by its first server and by `restorectl cluster status`): without it this server could join anyone")
	}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, c.id)
	if err != nil {
		return err
	}
	var pinned *x509.Certificate
	conn, err := grpc.NewClient(cfg.Join, grpc.WithTransportCredentials(credentials.NewTLS(
		pki.PinnedConfig(cfg.CAFingerprint, func(ca *x509.Certificate) { pinned = ca }))))
	if err != nil {
		return fmt.Errorf("join %s: %w", cfg.Join, err)
	}
	defer conn.Close()
	var resp *raftv1.EnrollResponse
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+cfg.JoinToken)
		resp, err = raftv1.NewClusterServiceClient(conn).Enroll(ctx, &raftv1.EnrollRequest{NodeId: c.id.Name, Csr: csr, Hosts: c.hosts})
		cancel()
		if err == nil || attempt == 15 || !retryableJoin(err) {
			break
		}
		c.log.Warn("enrolling with the cluster failed; retrying", "via", cfg.Join, "attempt", attempt, "err", err)
		time.Sleep(time.Second)
	}
	if err != nil {
		return fmt.Errorf("enroll with the cluster at %s: %w", cfg.Join, err)
	}
	if c.ca, err = pki.LoadCAFromPEM(resp.CaCert, resp.CaKey); err != nil {
		return err
	}
	if pinned == nil || pki.Fingerprint(c.ca.Cert) != cfg.CAFingerprint {
		return errors.New("the cluster sent a CA other than the one pinned: refusing it")
	}
	if err := pki.Write(c.files.CAKey(), resp.CaKey, true); err != nil {
		return err
	}
	if err := pki.Write(c.files.CA(), resp.CaCert, false); err != nil {
		return err
	}
	if err := c.install(resp.Cert, key); err != nil {
		return err
	}
	c.log.Info("enrolled with the cluster", "via", cfg.Join, "ca_fingerprint", cfg.CAFingerprint)
	return nil
}

// renewals renews this server's certificate when it has used two thirds
// of its lifetime, in place: the next handshake serves the new one.
func (c *certs) renewals(ctx context.Context) {
	if !c.managed {
		return
	}
	every := min(time.Hour, max(c.lifetime/20, time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if !c.keeper.Due(time.Now()) {
			continue
		}
		if err := c.issueOwn(); err != nil {
			c.log.Error("renewing this server's certificate failed; retrying", "err", err)
			continue
		}
		c.log.Info("renewed this server's certificate", "expires", c.keeper.Leaf().NotAfter.UTC().Format(time.RFC3339))
	}
}

// retryableJoin: the cluster was not reachable yet; a refusal is final.
func retryableJoin(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return !strings.Contains(err.Error(), "not the one pinned")
	}
	return false
}
