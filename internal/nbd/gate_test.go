package nbd

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a throwaway CA for the gate's tests (internal/pki builds on
// this package's users, not the other way round).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// gate serves qemu-nbd's socket to clients whose certificate is "allowed".
func gate(t *testing.T, ca *testCA, sock string) string {
	t.Helper()
	return gateCounting(t, ca, sock, nil)
}

// gateCounting is gate, telling served of the bytes sent.
func gateCounting(t *testing.T, ca *testCA, sock string, served func(int64)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{
		TLS: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{ca.issue(t, "host.test", x509.ExtKeyUsageServerAuth)},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool()},
		Backend: func(st tls.ConnectionState) (string, string, error) {
			if cn := st.PeerCertificates[0].Subject.CommonName; cn != "allowed" {
				return "", "", fmt.Errorf("certificate %s may read no export here", cn)
			}
			return "unix", sock, nil
		},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Served: served,
	}
	go func() { _ = g.Serve(l) }()
	t.Cleanup(func() { l.Close(); g.CloseAll() })
	return l.Addr().String()
}

func clientTLS(ca *testCA, cert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.pool(), ServerName: "host.test", Certificates: []tls.Certificate{cert}}
}

func TestGateServesTheExportOnlyOverTLSToItsCertificate(t *testing.T) {
	ca := newTestCA(t)
	var served atomic.Int64
	addr := gateCounting(t, ca, serve(t, image(t), "-r"), func(n int64) { served.Add(n) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := Dial(ctx, "tcp", addr, Options{Export: "disk", MetaContexts: []string{BaseAllocation},
		TLS: clientTLS(ca, ca.issue(t, "allowed", x509.ExtKeyUsageClientAuth))})
	if err != nil {
		t.Fatalf("dial through the gate: %v", err)
	}
	defer c.Close()
	p := make([]byte, mib)
	if _, err := c.ReadAt(p, 0); err != nil || !bytes.Equal(p, bytes.Repeat([]byte{0xaa}, mib)) {
		t.Fatalf("read through the gate: %v", err)
	}
	if ext, err := c.BlockStatus(BaseAllocation, 0, c.Size()); err != nil || len(ext) == 0 {
		t.Fatalf("block status through the gate: %v %v", ext, err)
	}
	if n := served.Load(); n < mib {
		t.Fatalf("the gate counted %d bytes served for a read of %d", n, mib)
	}

	refusals := []struct {
		name string
		opts Options
		want string
	}{
		{"plaintext", Options{Export: "disk"}, "TLS"},
		{"another certificate of the CA", Options{Export: "disk", TLS: clientTLS(ca, ca.issue(t, "other", x509.ExtKeyUsageClientAuth))}, "may read no export here"},
		{"a certificate of another CA", Options{Export: "disk", TLS: clientTLS(ca, newTestCA(t).issue(t, "allowed", x509.ExtKeyUsageClientAuth))}, ""},
		{"no certificate", Options{Export: "disk", TLS: clientTLS(ca, tls.Certificate{})}, ""},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			c, err := Dial(ctx, "tcp", addr, r.opts)
			if err == nil {
				c.Close()
				t.Fatal("the gate let it in")
			}
			if !strings.Contains(err.Error(), r.want) {
				t.Fatalf("refused with %q, want it to say %q", err, r.want)
			}
		})
	}
}

func TestGateDoesNotListExports(t *testing.T) {
	ca := newTestCA(t)
	addr := gate(t, ca, serve(t, image(t), "-r"))
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	hello := make([]byte, 18)
	if _, err := io.ReadFull(raw, hello); err != nil {
		t.Fatal(err)
	}
	_ = binary.Write(raw, binary.BigEndian, uint32(flagFixedNewstyle|flagNoZeroes))
	// Listing before TLS: TLS required.
	_, _ = raw.Write(option{opt: optList}.bytes())
	if typ := readReplyType(t, raw); typ != repErrTLSReqd {
		t.Fatalf("NBD_OPT_LIST in plaintext answered %#x, want NBD_REP_ERR_TLS_REQD", typ)
	}
	_, _ = raw.Write(option{opt: optStartTLS}.bytes())
	if typ := readReplyType(t, raw); typ != repAck {
		t.Fatalf("STARTTLS answered %#x", typ)
	}
	tc := tls.Client(raw, clientTLS(ca, ca.issue(t, "allowed", x509.ExtKeyUsageClientAuth)))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write(option{opt: optList}.bytes())
	if typ := readReplyType(t, tc); typ != repErrPolicy {
		t.Fatalf("NBD_OPT_LIST over TLS answered %#x, want NBD_REP_ERR_POLICY", typ)
	}
}

func readReplyType(t *testing.T, r io.Reader) uint32 {
	t.Helper()
	var h struct {
		Magic     uint64
		Opt, Type uint32
		Len       uint32
	}
	if err := binary.Read(r, binary.BigEndian, &h); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, r, int64(h.Len)); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return h.Type
}
