package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

type holder struct {
	keeper        *Keeper
	cert          *x509.Certificate
	certPEM, keyP []byte
}

func issue(t *testing.T, ca *CA, id Identity, now time.Time, life time.Duration, hosts ...string) holder {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(Request{Identity: id, Public: key.Public(), Hosts: hosts, Lifetime: life, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := EncodeKey(key)
	k, err := NewKeeper(append(EncodeCert(cert), EncodeCert(ca.Cert)...), kp)
	if err != nil {
		t.Fatal(err)
	}
	return holder{keeper: k, cert: cert, certPEM: append(EncodeCert(cert), EncodeCert(ca.Cert)...), keyP: kp}
}

// handshake runs a TLS handshake over a pipe and returns the client's and
// the server's errors.
func handshake(client, server *tls.Config) (error, error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	errs := make(chan error, 1)
	go func() {
		s := tls.Server(b, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3 sends the client's certificate after the client's
			// Finished: read once so the server's verdict reaches it.
			_, err = s.Write([]byte("x"))
		}
		errs <- err
		if err != nil {
			b.Close()
		}
	}()
	c := tls.Client(a, client)
	cerr := c.Handshake()
	if cerr == nil {
		buf := make([]byte, 1)
		_, cerr = c.Read(buf)
	}
	return cerr, <-errs
}

func TestIdentitiesRoundTripThroughCertificates(t *testing.T) {
	ca, err := NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []Identity{{RoleServer, "s1"}, {RoleAgent, "kvm-01"}} {
		h := issue(t, ca, id, time.Now(), time.Hour, "127.0.0.1", "restored.example")
		got, err := IdentityOf(h.cert)
		if err != nil || got != id {
			t.Fatalf("identity %v %v, want %v", got, err, id)
		}
		if len(h.cert.IPAddresses) != 1 || h.cert.DNSNames[0] != "restored.example" {
			t.Fatalf("names %v %v", h.cert.IPAddresses, h.cert.DNSNames)
		}
	}
	if _, err := ca.Issue(Request{Identity: Identity{Role: "root", Name: "x"}}); err == nil {
		t.Fatal("issued a certificate with no known role")
	}
	if !strings.HasPrefix(ca.Fingerprint(), "sha256:") || len(ca.Fingerprint()) != 71 {
		t.Fatalf("fingerprint %q", ca.Fingerprint())
	}
}

func TestConnectionsAcceptOnlyTheRightPeers(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("cluster", now)
	other, _ := NewCA("another cluster", now)
	server := issue(t, ca, Identity{RoleServer, "s1"}, now, time.Hour, "127.0.0.1")
	peer := issue(t, ca, Identity{RoleServer, "s2"}, now, time.Hour)
	agent := issue(t, ca, Identity{RoleAgent, "kvm-01"}, now, time.Hour)
	foreign := issue(t, other, Identity{RoleServer, "s9"}, now, time.Hour)
	expired := issue(t, ca, Identity{RoleServer, "s3"}, now.Add(-2*time.Hour), time.Hour)
	revoked := issue(t, ca, Identity{RoleAgent, "kvm-02"}, now, time.Hour)
	isRevoked := func(c *x509.Certificate) bool { return c.SerialNumber.Cmp(revoked.cert.SerialNumber) == 0 }
	serversOnly := Peer{Roles: []Role{RoleServer}}
	anyone := Peer{Revoked: isRevoked}
	tests := []struct {
		name    string
		client  *tls.Config
		server  *tls.Config
		refused string // "" accepted; else a word of the error
	}{
		{"a server dials a server (raft)", ClientConfig(ca.Pool(), peer.keeper, "", serversOnly), ServerConfig(server.keeper, ca.Pool(), serversOnly), ""},
		{"an agent on raft", ClientConfig(ca.Pool(), agent.keeper, "", serversOnly), ServerConfig(server.keeper, ca.Pool(), serversOnly), "agent certificate may not connect"},
		{"no certificate on raft", ClientConfig(ca.Pool(), nil, "", serversOnly), ServerConfig(server.keeper, ca.Pool(), serversOnly), "certificate"},
		{"another CA's server", ClientConfig(ca.Pool(), foreign.keeper, "", serversOnly), ServerConfig(server.keeper, ca.Pool(), serversOnly), "not one of this cluster's"},
		{"an expired certificate", ClientConfig(ca.Pool(), expired.keeper, "", serversOnly), ServerConfig(server.keeper, ca.Pool(), serversOnly), "expired"},
		{"a partner without a certificate (bearer token)", ClientConfig(ca.Pool(), nil, "127.0.0.1", Peer{}), ServerConfig(server.keeper, ca.Pool(), anyone), ""},
		{"an agent with its certificate", ClientConfig(ca.Pool(), agent.keeper, "127.0.0.1", Peer{}), ServerConfig(server.keeper, ca.Pool(), anyone), ""},
		{"a revoked agent", ClientConfig(ca.Pool(), revoked.keeper, "127.0.0.1", Peer{}), ServerConfig(server.keeper, ca.Pool(), anyone), "revoked"},
		{"a client trusting another CA", ClientConfig(other.Pool(), nil, "127.0.0.1", Peer{}), ServerConfig(server.keeper, ca.Pool(), anyone), "unknown authority"},
		{"a server answering as an agent", ClientConfig(ca.Pool(), peer.keeper, "", serversOnly), ServerConfig(agent.keeper, ca.Pool(), serversOnly), "agent certificate may not connect"},
		{"a pinned first contact", PinnedConfig(ca.Fingerprint(), func(*x509.Certificate) {}), ServerConfig(server.keeper, ca.Pool(), anyone), ""},
		{"a pin of another CA", PinnedConfig(other.Fingerprint(), func(*x509.Certificate) {}), ServerConfig(server.keeper, ca.Pool(), anyone), "not the one pinned"},
		{"TLS 1.2", &tls.Config{MaxVersion: tls.VersionTLS12, RootCAs: ca.Pool(), ServerName: "127.0.0.1"}, ServerConfig(server.keeper, ca.Pool(), anyone), "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cerr, serr := handshake(tt.client, tt.server)
			if tt.refused == "" {
				if cerr != nil || serr != nil {
					t.Fatalf("refused: client %v, server %v", cerr, serr)
				}
				return
			}
			if cerr == nil && serr == nil {
				t.Fatal("accepted")
			}
			msg := ""
			for _, e := range []error{cerr, serr} {
				if e != nil {
					msg += e.Error() + " | "
				}
			}
			if !strings.Contains(msg, tt.refused) {
				t.Fatalf("refused with %q, want it to say %q", msg, tt.refused)
			}
		})
	}
}

func TestAKeeperSwapsItsCertificateAndSaysWhenToRenew(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("cluster", now)
	old := issue(t, ca, Identity{RoleServer, "s1"}, now.Add(-50*time.Minute), time.Hour)
	if !old.keeper.Due(now) {
		t.Fatal("a certificate 50 minutes into its hour is not due")
	}
	fresh := issue(t, ca, Identity{RoleServer, "s1"}, now, time.Hour)
	if fresh.keeper.Due(now) {
		t.Fatal("a new certificate is due")
	}
	if err := old.keeper.Set(fresh.certPEM, fresh.keyP); err != nil {
		t.Fatal(err)
	}
	if old.keeper.Leaf().SerialNumber.Cmp(fresh.cert.SerialNumber) != 0 || old.keeper.Due(now) {
		t.Fatal("the keeper did not swap in the renewed certificate")
	}
	if err := old.keeper.Set(fresh.certPEM, []byte("junk")); err == nil {
		t.Fatal("a bad key was swapped in")
	}
}

func TestARevocationRefusesWhatWasIssuedUpToItsSecond(t *testing.T) {
	rev := time.Date(2026, 12, 1, 10, 0, 0, 400_000_000, time.UTC)
	for _, tt := range []struct {
		issued time.Time
		want   bool
	}{
		{rev.Add(-time.Hour), true},
		{rev.Add(-300 * time.Millisecond), true},
		{rev.Add(300 * time.Millisecond), true}, // the same second: refused too
		{IssueAfter(rev), false},
		{rev.Add(time.Hour), false},
	} {
		notBefore := tt.issued.Truncate(time.Second).Add(-Backdate) // as X.509 keeps it
		if got := RevokedBy(notBefore, rev); got != tt.want {
			t.Errorf("issued %s: revoked %v, want %v", tt.issued.Format("15:04:05.000"), got, tt.want)
		}
	}
}
