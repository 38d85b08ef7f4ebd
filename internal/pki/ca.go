package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Lifetimes of what the CA issues.
const (
	CALifetime     = 10 * 365 * 24 * time.Hour
	ServerLifetime = 90 * 24 * time.Hour
	AgentLifetime  = 30 * 24 * time.Hour
	// Backdate covers clocks a little behind the CA's.
	Backdate = 5 * time.Minute
)

// CA is the cluster CA.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewKey makes a private key (ECDSA P-256).
func NewKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA makes a self-signed CA named after the cluster.
func NewCA(name string, now time.Time) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: name, Organization: []string{"Restored"}},
		NotBefore: now.Add(-Backdate), NotAfter: now.Add(CALifetime),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("make the cluster CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Fingerprint is a certificate's SHA-256 fingerprint, "sha256:<hex>": what a
// joining server or agent pins the CA by.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Fingerprint is the CA certificate's fingerprint.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert) }

// Pool is a certificate pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Request is what a certificate is issued for.
type Request struct {
	// Identity goes into the URI SAN.
	Identity Identity
	// Public is the holder's public key (from its CSR).
	Public crypto.PublicKey
	// Hosts are the DNS names and IP addresses it serves under (servers,
	// and agents that serve NBD to backup jobs).
	Hosts    []string
	Lifetime time.Duration
	Now      time.Time
}

// Issue signs a certificate. Servers get server and client auth (they
// serve, and call each other); agents client auth, and server auth for the
// exports they serve.
func (ca *CA) Issue(req Request) (*x509.Certificate, error) {
	if req.Identity.Name == "" || (req.Identity.Role != RoleServer && req.Identity.Role != RoleAgent && !req.Identity.Role.reader()) {
		return nil, errors.New("issue: an identity (server, agent or snapshot, with a name) is required")
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	notAfter := req.Now.Add(req.Lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: req.Identity.String(), Organization: []string{"Restored"}},
		NotBefore: req.Now.Add(-Backdate), NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: usages(req.Identity.Role),
		URIs:        []*url.URL{req.Identity.URI()},
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, strings.ToLower(h))
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.Public, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue a certificate for %s: %w", req.Identity, err)
	}
	return x509.ParseCertificate(der)
}

// usages: servers and agents serve and call; a snapshot's holder only calls.
func usages(r Role) []x509.ExtKeyUsage {
	if r.reader() {
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
}

// EncodeCert is a certificate as PEM.
func EncodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// EncodeKey is a private key as PEM (PKCS #8).
func EncodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCert reads one PEM certificate.
func ParseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// ParseKey reads one PEM private key (PKCS #8, or EC/PKCS #1 as operators'
// tools write them).
func ParseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("the private key cannot sign")
	}
	return s, nil
}

// IssueCSR checks a PKCS #10 request (DER) and issues a certificate for
// the key it names.
func (ca *CA) IssueCSR(der []byte, id Identity, hosts []string, lifetime time.Duration, now time.Time) (*x509.Certificate, error) {
	if !ca.CanIssue() {
		return nil, errors.New("this server has the cluster CA's certificate but not its key: it cannot issue certificates")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("the certificate request does not parse: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the certificate request is not signed by its key: %w", err)
	}
	return ca.Issue(Request{Identity: id, Public: csr.PublicKey, Hosts: hosts, Lifetime: lifetime, Now: now})
}

// NewCSR makes a certificate request (DER) for key.
func NewCSR(key crypto.Signer, id Identity) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id.String()}}, key)
}

// X.509 times have whole seconds: a revocation at revokedAt refuses every
// certificate issued in its second or before, and IssueAfter is the first
// instant a new certificate for the same holder may be issued at.

// RevokedBy says whether a certificate with notBefore was issued before a
// revocation at revokedAt.
func RevokedBy(notBefore, revokedAt time.Time) bool {
	return notBefore.Add(Backdate).Before(IssueAfter(revokedAt))
}

// IssueAfter is the first whole second after revokedAt.
func IssueAfter(revokedAt time.Time) time.Time {
	return revokedAt.Truncate(time.Second).Add(time.Second)
}
