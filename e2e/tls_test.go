package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/server"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// certFor issues a certificate of the server's own CA (read from its data
// dir, as an attacker who stole an old certificate would hold one).
func certFor(t *testing.T, e *env, id pki.Identity, notBefore time.Time, life time.Duration) *pki.Keeper {
	t.Helper()
	dir := filepath.Dir(e.srv.CACert())
	ca, err := pki.LoadCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return keeperFrom(t, ca, id, notBefore, life)
}

func keeperFrom(t *testing.T, ca *pki.CA, id pki.Identity, notBefore time.Time, life time.Duration) *pki.Keeper {
	t.Helper()
	key, _ := pki.NewKey()
	cert, err := ca.Issue(pki.Request{Identity: id, Public: key.Public(), Lifetime: life, Now: notBefore})
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := pki.EncodeKey(key)
	k, err := pki.NewKeeper(append(pki.EncodeCert(cert), pki.EncodeCert(ca.Cert)...), kp)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// register tries AgentService.Register for host over conn.
func register(conn *grpc.ClientConn, host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := restorev1.NewAgentServiceClient(conn).Register(ctx, &restorev1.RegisterRequest{ProtocolVersion: version.AgentProtocol,
		HostId: host, AgentVersion: "test", Capacity: &restorev1.Capacity{Vcpus: 1, MemoryMib: 128}})
	return err
}

func dialWith(t *testing.T, e *env, k *pki.Keeper) *grpc.ClientConn {
	t.Helper()
	ca, _ := pki.LoadCA(e.ca, "")
	conn, err := grpc.NewClient(e.srv.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(
		pki.ClientConfig(ca.Pool(), k, "127.0.0.1", pki.Peer{}))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Every port speaks TLS and every identity is checked: each refusal says
// why, writes nothing to raft, and logs no secret.
func TestEveryPortRefusesWhatItMust(t *testing.T) {
	logs := &syncBuffer{}
	e := startServer(t, serverOpts{log: logs})
	partner := e.partner("acme")
	agentA := e.enroll("kvm-01")
	connA := e.connAs(agentA)
	if err := register(connA, "kvm-01"); err != nil {
		t.Fatalf("agent A registering its own host: %v", err)
	}
	reused, _ := restorev1.NewHostServiceClient(e.conn).CreateJoinToken(e.ctx(e.admin), &restorev1.CreateJoinTokenRequest{HostId: "kvm-03"})
	enrollReq := func() error {
		key, _ := pki.NewKey()
		csr, _ := pki.NewCSR(key, pki.Identity{Role: pki.RoleAgent, Name: "x"})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := restorev1.NewAgentServiceClient(e.conn).Enroll(ctx, &restorev1.EnrollRequest{JoinToken: reused.Secret, Csr: csr})
		return err
	}
	if err := enrollReq(); err != nil {
		t.Fatalf("first use of a join token: %v", err)
	}
	ca, _ := pki.LoadCA(e.ca, "")
	other, _ := pki.NewCA("another cluster", time.Now())

	tests := []struct {
		name string
		try  func() error
		// code is the gRPC code wanted (codes.Unavailable: the handshake
		// failed), want a word of the error.
		code codes.Code
		want string
	}{
		{"plaintext gRPC", func() error {
			conn, _ := grpc.NewClient(e.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			defer conn.Close()
			_, err := restorev1.NewAdminServiceClient(conn).GetCluster(e.ctx(e.admin), &restorev1.GetClusterRequest{})
			return err
		}, codes.Unavailable, ""},
		{"agent A reporting for host B", func() error { return register(connA, "kvm-02") }, codes.PermissionDenied, `may not act for host "kvm-02"`},
		{"a reused join token", enrollReq, codes.Unauthenticated, "used already"},
		{"an agent certificate on a server-only RPC", func() error {
			_, err := raftv1.NewClusterServiceClient(connA).Join(e.ctx(e.admin), &raftv1.JoinRequest{Server: &restorev1.Server{Id: "evil", RaftAddress: "127.0.0.1:1", GrpcAddress: "127.0.0.1:2"}})
			return err
		}, codes.PermissionDenied, "for servers of this cluster"},
		{"a bearer token on AgentService", func() error {
			_, err := restorev1.NewAgentServiceClient(e.conn).Heartbeat(e.ctx(e.admin), &restorev1.HeartbeatRequest{ProtocolVersion: version.AgentProtocol, HostId: "kvm-01"})
			return err
		}, codes.Unauthenticated, "agent's certificate"},
		{"a certificate of another CA", func() error {
			return register(dialWith(t, e, keeperFrom(t, other, pki.Identity{Role: pki.RoleAgent, Name: "kvm-01"}, time.Now(), time.Hour)), "kvm-01")
		}, codes.Unavailable, ""},
		{"an expired certificate", func() error {
			return register(dialWith(t, e, certFor(t, e, pki.Identity{Role: pki.RoleAgent, Name: "kvm-01"}, time.Now().Add(-3*time.Hour), time.Hour)), "kvm-01")
		}, codes.Unavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.quiesce()
			err := tt.try()
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %s saying %q", err, tt.code, tt.want)
			}
			if after := e.quiesce(); after != before {
				t.Fatalf("a refusal wrote to raft (commit index %d → %d)", before, after)
			}
		})
	}

	t.Run("plain HTTP", func(t *testing.T) {
		resp, err := http.Get("http://" + e.srv.HTTPAddr() + "/v1/restores")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
				t.Fatalf("plain HTTP answered %d %s", resp.StatusCode, b)
			}
		}
	})
	t.Run("an agent certificate on raft", func(t *testing.T) {
		conn, err := tls.Dial("tcp", e.srv.RaftAddr(), pki.ClientConfig(ca.Pool(), agentA.Keeper, "", pki.Peer{Roles: []pki.Role{pki.RoleServer}}))
		if err == nil {
			// TLS 1.3: the server's refusal arrives with the first read.
			_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("raft with an agent certificate: %v", err)
		}
	})
	t.Run("raft without TLS", func(t *testing.T) {
		c, err := tls.Dial("tcp", e.srv.RaftAddr(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil {
			t.Fatal("raft accepted a client without a certificate")
		}
	})
	t.Run("a join with the wrong CA fingerprint", func(t *testing.T) {
		_, err := server.Start(server.Config{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
			NodeID: "s9", Join: e.srv.GRPCAddr(), JoinToken: e.admin, CAFingerprint: other.Fingerprint(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil || !strings.Contains(err.Error(), "not the one pinned") {
			t.Fatalf("joined a cluster whose CA is not the pinned one: %v", err)
		}
	})
	t.Run("removing a host revokes its certificate at once", func(t *testing.T) {
		id := e.enroll("kvm-04")
		conn := e.connAs(id)
		if err := register(conn, "kvm-04"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream, err := restorev1.NewAgentServiceClient(conn).WatchAssignments(ctx, &restorev1.WatchAssignmentsRequest{ProtocolVersion: version.AgentProtocol, HostId: "kvm-04"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		if _, err := restorev1.NewHostServiceClient(e.conn).RemoveHost(e.ctx(e.admin), &restorev1.RemoveHostRequest{Id: "kvm-04"}); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("the open stream of a removed host: %v", err)
		}
		if err := register(conn, "kvm-04"); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("a call on the open connection of a removed host: %v", err)
		}
		if err := register(e.connAs(id), "kvm-04"); err == nil {
			t.Fatal("a new connection with a revoked certificate worked")
		}
		// A new join token enrolls the host again.
		if err := register(e.agentConn("kvm-04"), "kvm-04"); err != nil {
			t.Fatalf("re-enrolled host: %v", err)
		}
	})

	for _, secret := range []string{reused.Secret, partner, e.admin} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a secret is in the server's log")
		}
	}
	if !strings.Contains(logs.String(), "join token") {
		t.Fatal("the refused enrollment is not logged")
	}
}
