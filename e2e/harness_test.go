package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/agentid"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/server"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// env is one in-process restored with an admin client.
type env struct {
	t     *testing.T
	srv   *server.Server
	admin string
	conn  *grpc.ClientConn
	base  string
	// ca is the cluster CA's certificate; http trusts it.
	ca   string
	http *http.Client
}

// httpsClient is an HTTP client that trusts the cluster CA in caFile.
func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	ca, err := pki.LoadCA(caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13}}}
}

// grpcConn dials addr over TLS, trusting the cluster CA in caFile.
func grpcConn(t *testing.T, caFile, addr string) *grpc.ClientConn {
	t.Helper()
	tlsc, err := pki.DialConfig(caFile, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type serverOpts struct {
	heartbeatTTL time.Duration
	// tokenUseInterval: how often token uses are written (default an
	// hour: no test's commit-index check meets a batch by chance).
	tokenUseInterval time.Duration
	// limits replaces the server's rate limits and timeouts.
	limits server.Limits
	// log receives the server's log (default: discarded, or stderr with
	// E2E_VERBOSE).
	log io.Writer
	// dataDir is the server's data dir (default: a new temporary one).
	dataDir string
	// raftMinFreeMiB is the raft directory's reserve and raftSegmentMiB
	// its log segments' size (default: the server's).
	raftMinFreeMiB, raftSegmentMiB int64
}

func startServer(t *testing.T, opts ...serverOpts) *env {
	t.Helper()
	var o serverOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	dir := o.dataDir
	if dir == "" {
		dir = t.TempDir()
	}
	logOut := io.Discard
	if os.Getenv("E2E_VERBOSE") != "" {
		logOut = os.Stderr
	}
	if o.log != nil {
		logOut = o.log
	}
	srv, err := server.Start(server.Config{
		DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", NodeID: "s1",
		HeartbeatTTL: o.heartbeatTTL, HeartbeatInterval: 100 * time.Millisecond, SchedulerInterval: 100 * time.Millisecond,
		TokenUseInterval: cmp.Or(o.tokenUseInterval, time.Hour), Limits: o.limits, RaftMinFreeMiB: o.raftMinFreeMiB, RaftSegmentMiB: o.raftSegmentMiB,
		Logger: slog.New(slog.NewTextHandler(logOut, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	e := &env{t: t, srv: srv, base: "https://" + srv.HTTPAddr(), ca: srv.CACert()}
	e.http = httpsClient(t, e.ca)
	eventually(t, 10*time.Second, "bootstrap token and readiness", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "bootstrap-token"))
		if err != nil {
			return false
		}
		e.admin = strings.TrimSpace(string(b))
		code, _ := e.rest("GET", "/readyz", "", nil)
		return code == 200
	})
	e.conn = grpcConn(t, e.ca, srv.GRPCAddr())
	return e
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ctx returns a context carrying token.
func (e *env) ctx(token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// rest calls the REST API and decodes a JSON object answer.
func (e *env) rest(method, path, token string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"_raw": string(raw)}
	}
	return resp.StatusCode, out
}

func (e *env) admins() restorev1.AdminServiceClient { return restorev1.NewAdminServiceClient(e.conn) }
func (e *env) restores() restorev1.RestoreServiceClient {
	return restorev1.NewRestoreServiceClient(e.conn)
}

// tenant creates a tenant.
func (e *env) tenant(id string) {
	e.t.Helper()
	if _, err := e.admins().CreateTenant(e.ctx(e.admin), &restorev1.CreateTenantRequest{Id: id, DisplayName: strings.ToUpper(id)}); err != nil {
		e.t.Fatal(err)
	}
}

// token mints a token and returns its secret and id.
func (e *env) token(tenant, role string) (secret, id string) {
	e.t.Helper()
	resp, err := e.admins().CreateToken(e.ctx(e.admin), &restorev1.CreateTokenRequest{Tenant: tenant, Role: role})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Secret, resp.Id
}

// partner creates a tenant and returns a partner token for it.
func (e *env) partner(tenant string) string {
	e.tenant(tenant)
	s, _ := e.token(tenant, "partner")
	return s
}

// commitIndex is the leader's raft commit index.
func (e *env) commitIndex() uint64 { return e.srv.Node().CommitIndex() }

// quiesce waits until no raft write happens for a while (the scheduler is idle).
func (e *env) quiesce() uint64 {
	e.t.Helper()
	last := e.commitIndex()
	stable := time.Now()
	eventually(e.t, 10*time.Second, "raft to go quiet", func() bool {
		if cur := e.commitIndex(); cur != last {
			last, stable = cur, time.Now()
		}
		return time.Since(stable) > 400*time.Millisecond
	})
	return last
}

func rp(id, tenant, asset string) *restorev1.RecoveryPoint {
	return &restorev1.RecoveryPoint{Id: id, Tenant: tenant, Asset: asset, Valid: true, Os: "linux", Firmware: "bios",
		Disks: []*restorev1.Disk{{Name: "disk0", Format: "qcow2", VirtualSize: 1 << 30}}}
}

// testAgent plays a hypervisor agent over the real AgentService.
type testAgent struct {
	e      *env
	host   string
	client restorev1.AgentServiceClient
	ctx    context.Context
	stream restorev1.AgentService_WatchAssignmentsClient
	stop   context.CancelFunc
}

// agent registers a host holding rps, heartbeats until the test ends, and
// watches its assignments.
func (e *env) agent(host string, rps ...*restorev1.RecoveryPoint) *testAgent {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &testAgent{e: e, host: host, client: restorev1.NewAgentServiceClient(e.agentConn(host)), ctx: ctx, stop: cancel}
	e.t.Cleanup(cancel)
	a.register(func(*restorev1.RegisterRequest) {})
	if _, err := a.client.ReportRecoveryPoints(ctx, &restorev1.ReportRecoveryPointsRequest{ProtocolVersion: version.AgentProtocol, HostId: host, RecoveryPoints: rps}); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			_, _ = a.client.Heartbeat(ctx, &restorev1.HeartbeatRequest{ProtocolVersion: version.AgentProtocol, HostId: host})
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	var err error
	a.stream, err = a.client.WatchAssignments(ctx, &restorev1.WatchAssignmentsRequest{ProtocolVersion: version.AgentProtocol, HostId: host})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// register (re)registers the host as a 4-vCPU, 4 GiB KVM test host, with
// what change sets on top.
func (a *testAgent) register(change func(*restorev1.RegisterRequest)) {
	a.e.t.Helper()
	req := &restorev1.RegisterRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.host, AgentVersion: "test", Hypervisors: []string{"kvm"}, Accelerator: "tcg",
		AcceleratorNote: "test agent", Capacity: &restorev1.Capacity{Vcpus: 4, MemoryMib: 4096},
	}
	change(req)
	if _, err := a.client.Register(a.ctx, req); err != nil {
		a.e.t.Fatal(err)
	}
}

// offer registers the host again offering bridges (its --bridge flags).
func (a *testAgent) offer(bridges ...*restorev1.HostBridge) {
	a.e.t.Helper()
	a.register(func(r *restorev1.RegisterRequest) { r.Bridges = bridges })
}

// declare registers the host again as a VMware host with only these
// capabilities (a hypervisor that cannot do everything KVM does).
func (a *testAgent) declare(caps ...restorev1.HostCapability) {
	a.e.t.Helper()
	a.register(func(r *restorev1.RegisterRequest) { r.Hypervisors, r.Capabilities = []string{"vmware"}, caps })
}

// inventory reports the host's domains (the full set), as an agent does.
func (a *testAgent) inventory(domains ...*restorev1.HostDomain) {
	a.e.t.Helper()
	if _, err := a.client.ReportInventory(a.ctx, &restorev1.ReportInventoryRequest{ProtocolVersion: version.AgentProtocol, HostId: a.host, Domains: domains}); err != nil {
		a.e.t.Fatal(err)
	}
}

// waitFor reads assignment sets until one satisfies cond.
func (a *testAgent) waitFor(what string, cond func([]*restorev1.Assignment) bool) []*restorev1.Assignment {
	a.e.t.Helper()
	return a.waitForState(what, func(m *restorev1.WatchAssignmentsResponse) bool { return cond(m.Assignments) }).Assignments
}

// waitForSnapshots reads desired states until the snapshot assignments
// satisfy cond.
func (a *testAgent) waitForSnapshots(what string, timeout time.Duration, cond func([]*restorev1.SnapshotAssignment) bool) {
	a.e.t.Helper()
	a.waitForStateWithin(what, timeout, func(m *restorev1.WatchAssignmentsResponse) bool { return cond(m.Snapshots) })
}

func (a *testAgent) waitForState(what string, cond func(*restorev1.WatchAssignmentsResponse) bool) *restorev1.WatchAssignmentsResponse {
	a.e.t.Helper()
	return a.waitForStateWithin(what, 10*time.Second, cond)
}

func (a *testAgent) waitForStateWithin(what string, timeout time.Duration, cond func(*restorev1.WatchAssignmentsResponse) bool) *restorev1.WatchAssignmentsResponse {
	a.e.t.Helper()
	type recv struct {
		m   *restorev1.WatchAssignmentsResponse
		err error
	}
	deadline := time.After(timeout)
	for {
		ch := make(chan recv, 1)
		go func() {
			m, err := a.stream.Recv()
			ch <- recv{m, err}
		}()
		select {
		case r := <-ch:
			if r.err != nil {
				a.e.t.Fatalf("assignment stream: %v", r.err)
			}
			if cond(r.m) {
				return r.m
			}
		case <-deadline:
			a.e.t.Fatalf("timed out waiting for assignments: %s", what)
		}
	}
}

// report sends a status report.
func (a *testAgent) report(restoreID string, state restorev1.RestoreState, boot *restorev1.Boot) *restorev1.Restore {
	a.e.t.Helper()
	resp, err := a.client.ReportRestoreStatus(a.ctx, &restorev1.ReportRestoreStatusRequest{
		ProtocolVersion: version.AgentProtocol, HostId: a.host, RestoreId: restoreID, State: state, StateReason: "test agent says " + state.String(), Boot: boot,
	})
	if err != nil {
		a.e.t.Fatal(err)
	}
	return resp.Restore
}

// createRestore posts a restore over REST and returns its id.
func (e *env) createRestore(token, rpID, requestID string) string {
	e.t.Helper()
	code, body := e.rest("POST", "/v1/restores", token, map[string]any{
		"recovery_point_id": rpID, "mode": "VIRTUALIZE", "vcpus": 1, "memory_mib": 256, "ttl_seconds": 3600, "request_id": requestID,
	})
	if code != 200 {
		e.t.Fatalf("create restore: HTTP %d %v", code, body)
	}
	return body["id"].(string)
}

// restoreState reads a restore's state over REST.
func (e *env) restoreState(token, id string) string {
	e.t.Helper()
	code, body := e.rest("GET", "/v1/restores/"+id, token, nil)
	if code != 200 {
		e.t.Fatalf("get restore %s: HTTP %d %v", id, code, body)
	}
	return body["state"].(string)
}

// agentConn enrolls a stand-in agent for host (a join token, a CSR, the
// kept certificate, as a real agent does) and returns a connection that
// presents its certificate.
func (e *env) agentConn(host string) *grpc.ClientConn {
	e.t.Helper()
	return e.connAs(e.enroll(host))
}

// enroll enrolls a stand-in agent for host and returns its identity.
func (e *env) enroll(host string) *agentid.Identity {
	e.t.Helper()
	jt, err := restorev1.NewHostServiceClient(e.conn).CreateJoinToken(e.ctx(e.admin), &restorev1.CreateJoinTokenRequest{HostId: host})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := agentid.Enroll(ctx, agentid.EnrollOptions{Server: e.srv.GRPCAddr(), JoinToken: jt.Secret, CAFingerprint: jt.CaFingerprint, Dir: e.t.TempDir()})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// connAs connects to the server presenting an agent's certificate.
func (e *env) connAs(id *agentid.Identity) *grpc.ClientConn {
	e.t.Helper()
	conn, err := grpc.NewClient(e.srv.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(id.DialConfig(e.srv.GRPCAddr()))))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// serverSPKI is the base64 SHA-256 of the public key of the server whose
// data dir is dataDir (what Chromium's --ignore-certificate-errors-spki-list
// takes).
func serverSPKI(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
