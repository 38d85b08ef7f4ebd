package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/pki"
)

func TestTheGateReachesOnlyTheSnapshotItsCertificateNamesWhileServed(t *testing.T) {
	p, _, rep := snapshotStand(t)
	p.public = (&exports{advertised: "198.51.100.7:10809"}).uri
	p.gateCA = "-----BEGIN CERTIFICATE-----\n…"
	ctx := context.Background()
	p.reconcile(ctx, []*restorev1.SnapshotAssignment{snapshotIn(lifecycle.SnapRequested, false)})
	p.work.wait()
	ready := rep.snapshots[len(rep.snapshots)-1]
	if ready.Disks[0].NbdUri != "nbds://198.51.100.7:10809/x" || ready.NbdCaCert != p.gateCA {
		t.Fatalf("the READY report names %q (gate CA %q): want the gate's nbds:// URI and its CA", ready.Disks[0].NbdUri, ready.NbdCaCert)
	}
	ca, err := pki.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert := func(role pki.Role, name string) *x509.Certificate {
		key, _ := pki.NewKey()
		c, err := ca.Issue(pki.Request{Identity: pki.Identity{Role: role, Name: name}, Public: key.Public(), Lifetime: time.Hour, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	e := &exports{hostID: "h1", snapshots: p}
	for _, tc := range []struct {
		name string
		peer []*x509.Certificate
		want string // the socket, or what the refusal says
	}{
		{"the served snapshot's certificate", []*x509.Certificate{cert(pki.RoleSnapshot, s1)}, "/run/fake/x.sock"},
		{"another snapshot's certificate", []*x509.Certificate{cert(pki.RoleSnapshot, "01a21630-0000-7000-8000-0000000000b2")}, "is not served by host h1"},
		{"the host's own agent certificate", []*x509.Certificate{cert(pki.RoleAgent, "h1")}, "not a snapshot's"},
		{"a server's certificate", []*x509.Certificate{cert(pki.RoleServer, "s1")}, "not a snapshot's"},
		{"no certificate", nil, "no client certificate"},
	} {
		network, addr, err := e.backend(tls.ConnectionState{PeerCertificates: tc.peer})
		switch {
		case strings.HasPrefix(tc.want, "/"):
			if err != nil || network != "unix" || addr != tc.want {
				t.Errorf("%s: %s %s %v, want unix %s", tc.name, network, addr, err, tc.want)
			}
		case err == nil || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %s %s %v, want a refusal saying %q", tc.name, network, addr, err, tc.want)
		}
	}
	p.reconcile(ctx, []*restorev1.SnapshotAssignment{snapshotIn(lifecycle.SnapReady, true)})
	p.work.wait()
	if _, _, err := e.backend(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert(pki.RoleSnapshot, s1)}}); err == nil {
		t.Fatal("a released snapshot's certificate still reaches its socket")
	}
}

func TestAGateOnEveryInterfaceNeedsAnAdvertiseAddress(t *testing.T) {
	for _, tc := range []struct {
		listen, advertise, want string
	}{
		{"127.0.0.1:10809", "", ""},
		{"0.0.0.0:10809", "kvm-01.example.net", ""},
		{"0.0.0.0:10809", "", "every interface"},
		{":10809", "", "every interface"},
		{"[::]:10809", "", "every interface"},
		{"0.0.0.0:10809", "kvm-01:10809", "has a port"},
		{"10809", "", "missing port"},
	} {
		err := checkNBDAddr(tc.listen, tc.advertise)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("--nbd-addr %q --advertise-addr %q: %v, want %q", tc.listen, tc.advertise, err, tc.want)
		}
	}
}
