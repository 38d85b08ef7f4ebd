package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// Peer says what the other end of a connection must be.
type Peer struct {
	// Roles the peer's certificate may carry; empty: a client without a
	// certificate is accepted too (it authenticates with a bearer token).
	Roles []Role
	// Revoked, when set, refuses a certificate the cluster revoked.
	Revoked func(*x509.Certificate) bool
}

func (p Peer) required() bool { return len(p.Roles) > 0 }

// check verifies a peer certificate chain against the CA, and its role.
func (p Peer) check(ca *x509.CertPool, chain []*x509.Certificate, usage x509.ExtKeyUsage, now time.Time) error {
	if len(chain) == 0 {
		if p.required() {
			return errors.New("a client certificate of the cluster CA is required")
		}
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: ca, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now}); err != nil {
		return fmt.Errorf("certificate %q is not one of this cluster's: %w", chain[0].Subject.CommonName, err)
	}
	if p.Revoked != nil && p.Revoked(chain[0]) {
		return fmt.Errorf("certificate %q was revoked", chain[0].Subject.CommonName)
	}
	if !p.required() {
		return nil
	}
	id, err := IdentityOf(chain[0])
	if err != nil {
		return err
	}
	for _, r := range p.Roles {
		if id.Role == r {
			return nil
		}
	}
	return fmt.Errorf("a %s certificate may not connect here (%s only)", id.Role, p.Roles)
}

// ServerConfig is the TLS of a port Restored serves: TLS 1.3, the kept
// certificate, and the client's certificate checked against the CA (and
// the peer rule) when it sends one, required when the rule names roles.
func ServerConfig(k *Keeper, ca *x509.CertPool, peer Peer) *tls.Config {
	auth := tls.RequestClientCert
	if peer.required() {
		auth = tls.RequireAnyClientCert
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return k.get() },
		ClientAuth:     auth,
		// The chain is checked here, not by crypto/tls, so that the role
		// and the revocation are checked too, with one message.
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			chain, err := parse(raw)
			if err != nil {
				return err
			}
			return peer.check(ca, chain, x509.ExtKeyUsageClientAuth, time.Now())
		},
	}
}

func parse(raw [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ClientConfig is the TLS of a client of a Restored port: TLS 1.3, the
// server's certificate verified against the CA (and its name, when
// serverName is set), and the kept certificate sent when k is not nil.
// Servers and agents dial one another by address: they check the peer's
// role instead of its name.
func ClientConfig(ca *x509.CertPool, k *Keeper, serverName string, peer Peer) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca, ServerName: serverName}
	if k != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return k.get() }
	}
	if serverName == "" {
		c.InsecureSkipVerify = true // verified below: the chain and the role
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			return peer.check(ca, cs.PeerCertificates, x509.ExtKeyUsageServerAuth, time.Now())
		}
	}
	return c
}

// PinnedConfig is the TLS of a first contact, before the CA is known: the
// server's chain must end in a CA with the given fingerprint (kubeadm's
// --discovery-token-ca-cert-hash). found receives that CA.
func PinnedConfig(fingerprint string, found func(*x509.Certificate)) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below, against the pinned CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			chain := cs.PeerCertificates
			for _, c := range chain {
				if Fingerprint(c) != fingerprint || !c.IsCA {
					continue
				}
				pool := x509.NewCertPool()
				pool.AddCert(c)
				if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
					return fmt.Errorf("the server's certificate is not signed by the pinned CA: %w", err)
				}
				found(c)
				return nil
			}
			return fmt.Errorf("the cluster's CA is not the one pinned (%s): refusing to join it", fingerprint)
		},
	}
}

// DialConfig is the TLS a client (restorectl, an agent, a test) uses to
// reach a server at addr ("host:port"): the CA from caFile, the server's
// name checked against the host, and the kept certificate when k is not
// nil.
func DialConfig(caFile, addr string, k *Keeper) (*tls.Config, error) {
	ca, err := LoadCA(caFile, "")
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return ClientConfig(ca.Pool(), k, host, Peer{}), nil
}
