package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// watchEvent is one event of any watch stream, as the tests compare them.
type watchEvent struct {
	typ, rv, id, tenant string
}

func (w watchEvent) String() string { return w.typ + " " + w.rv + " " + w.id }

// eventStream reads events of one open watch, over gRPC or REST.
type eventStream struct {
	t      *testing.T
	events chan watchEvent
	errs   chan error
	cancel context.CancelFunc
}

// next returns the next event, failing the test after 10 s.
func (s *eventStream) next(what string) watchEvent {
	s.t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case err := <-s.errs:
		s.t.Fatalf("%s: the stream ended: %v", what, err)
	case <-time.After(10 * time.Second):
		s.t.Fatalf("%s: no event within 10 s", what)
	}
	return watchEvent{}
}

// until reads events up to and including the first that until says is
// the last.
func (s *eventStream) until(what string, last func(watchEvent) bool) []watchEvent {
	s.t.Helper()
	var out []watchEvent
	for {
		ev := s.next(what)
		out = append(out, ev)
		if last(ev) {
			return out
		}
	}
}

func isBookmark(ev watchEvent) bool { return ev.typ == "WATCH_EVENT_TYPE_BOOKMARK" }

// watchKind is one of the watch streams and a change that shows in it.
type watchKind struct {
	name string
	// rest is the REST path of the stream.
	rest string
	// grpc opens the stream over gRPC, delivering its events to s.
	grpc func(ctx context.Context, conn *grpc.ClientConn, rv string, bookmarks bool, s *eventStream) error
	// change makes one change of tenant's that the stream shows, and
	// says which object it changed.
	change func(t *testing.T, tenant string, i int) string
}

// pump delivers what recv returns until it fails.
func pump[R interface {
	GetType() restorev1.WatchEventType
	GetResourceVersion() string
}](s *eventStream, recv func() (R, error), obj func(R) (id, tenant string)) {
	go func() {
		for {
			m, err := recv()
			if err != nil {
				s.errs <- err
				return
			}
			id, tenant := obj(m)
			s.events <- watchEvent{typ: m.GetType().String(), rv: m.GetResourceVersion(), id: id, tenant: tenant}
		}
	}()
}

// withToken adds a bearer token to ctx.
func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func newStream(t *testing.T) (*eventStream, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &eventStream{t: t, events: make(chan watchEvent, 1000), errs: make(chan error, 1), cancel: cancel}, ctx
}

// watchGRPC opens kind's stream over gRPC as token.
func (e *env) watchGRPC(t *testing.T, k watchKind, token, rv string) *eventStream {
	t.Helper()
	s, ctx := newStream(t)
	ctx = withToken(ctx, token)
	if err := k.grpc(ctx, e.conn, rv, true, s); err != nil {
		t.Fatalf("%s over gRPC: %v", k.name, err)
	}
	return s
}

// watchREST opens kind's stream over REST (newline-delimited JSON) as
// token.
func (e *env) watchREST(t *testing.T, k watchKind, token, rv string) *eventStream {
	t.Helper()
	s, ctx := newStream(t)
	q := "?allow_bookmarks=true"
	if rv != "" {
		q += "&resource_version=" + rv
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+k.rest+q, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: HTTP %d", k.rest+q, resp.StatusCode)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<22)
		for sc.Scan() {
			var m struct {
				Result map[string]json.RawMessage `json:"result"`
				Error  *struct{ Message string }  `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				s.errs <- fmt.Errorf("line %q: %v", sc.Text(), err)
				return
			}
			if m.Error != nil {
				s.errs <- fmt.Errorf("error chunk: %s", m.Error.Message)
				return
			}
			var ev watchEvent
			for key, raw := range m.Result {
				switch key {
				case "type":
					_ = json.Unmarshal(raw, &ev.typ)
				case "resource_version":
					_ = json.Unmarshal(raw, &ev.rv)
				default: // the object
					var obj struct{ ID, Tenant string }
					_ = json.Unmarshal(raw, &obj)
					ev.id, ev.tenant = obj.ID, obj.Tenant
				}
			}
			s.events <- ev
		}
		s.errs <- fmt.Errorf("REST stream closed: %v", sc.Err())
	}()
	return s
}

// Every watch stream (restores, hosts, snapshots, verifications, audit)
// resumes where it left off: a client that disconnects after an event and
// reconnects with its resource_version gets exactly the events a client
// that never disconnected got after it, over REST as over gRPC; and no
// tenant's stream carries another's objects.
func TestEveryWatchResumesAfterItsLastEventWithoutMissingOrRepeatingOne(t *testing.T) {
	e := startServer(t)
	tenants := []string{"acme", "globex"}
	partners, backups := map[string]string{}, map[string]string{}
	var rps []*restorev1.RecoveryPoint
	for _, tn := range tenants {
		partners[tn] = e.partner(tn)
		backups[tn], _ = e.token(tn, "backup")
		rps = append(rps, rp("rp-"+tn, tn, "web-"+tn))
	}
	operator, _ := e.token("", "operator")
	agent := e.agent("kvm-w", rps...)
	agent.register(func(r *restorev1.RegisterRequest) { r.Capacity = &restorev1.Capacity{Vcpus: 1000, MemoryMib: 1 << 20} })
	// One guest per snapshot change (a guest has one snapshot at a time).
	var domains []*restorev1.HostDomain
	for i := 1; i <= 5; i++ {
		domains = append(domains, &restorev1.HostDomain{Uuid: fmt.Sprintf("4c4c4544-0042-3510-8053-%012d", i), Name: fmt.Sprintf("db-%d", i), Running: true})
	}
	agent.inventory(domains...)
	guests := map[int]string{}
	for i := 1; i <= 5; i++ {
		tn := map[bool]string{true: "globex", false: "acme"}[i == 5]
		code, g := e.rest("POST", "/v1/guests", operator, map[string]any{"hypervisor": "KVM", "host_id": "kvm-w", "name": fmt.Sprintf("db-%d", i), "tenant": tn})
		if code != 200 {
			t.Fatalf("register guest: HTTP %d %v", code, g)
		}
		guests[i] = g["id"].(string)
	}

	kinds := []watchKind{{
		name: "restores", rest: "/v1/restores:watch",
		grpc: func(ctx context.Context, conn *grpc.ClientConn, rv string, bm bool, s *eventStream) error {
			st, err := restorev1.NewRestoreServiceClient(conn).WatchRestores(ctx, &restorev1.WatchRestoresRequest{ResourceVersion: rv, AllowBookmarks: bm})
			if err != nil {
				return err
			}
			pump(s, st.Recv, func(m *restorev1.WatchRestoresResponse) (string, string) {
				return m.Restore.GetId(), m.Restore.GetTenant()
			})
			return nil
		},
		change: func(t *testing.T, tn string, i int) string {
			return e.createRestore(partners[tn], "rp-"+tn, fmt.Sprintf("watch-r-%d", i))
		},
	}, {
		name: "hosts", rest: "/v1/hosts:watch",
		grpc: func(ctx context.Context, conn *grpc.ClientConn, rv string, bm bool, s *eventStream) error {
			st, err := restorev1.NewHostServiceClient(conn).WatchHosts(ctx, &restorev1.WatchHostsRequest{ResourceVersion: rv, AllowBookmarks: bm})
			if err != nil {
				return err
			}
			pump(s, st.Recv, func(m *restorev1.WatchHostsResponse) (string, string) { return m.Host.GetId(), "" })
			return nil
		},
		change: func(t *testing.T, _ string, i int) string {
			verb := map[bool]string{true: "drain", false: "undrain"}[i%2 == 1]
			if code, body := e.rest("POST", "/v1/hosts/kvm-w:"+verb, operator, "{}"); code != 200 {
				t.Fatalf("%s: HTTP %d %v", verb, code, body)
			}
			return "kvm-w"
		},
	}, {
		name: "snapshots", rest: "/v1/snapshots:watch",
		grpc: func(ctx context.Context, conn *grpc.ClientConn, rv string, bm bool, s *eventStream) error {
			st, err := restorev1.NewSnapshotServiceClient(conn).WatchSnapshots(ctx, &restorev1.WatchSnapshotsRequest{ResourceVersion: rv, AllowBookmarks: bm})
			if err != nil {
				return err
			}
			pump(s, st.Recv, func(m *restorev1.WatchSnapshotsResponse) (string, string) {
				return m.Snapshot.GetId(), m.Snapshot.GetTenant()
			})
			return nil
		},
		change: func(t *testing.T, tn string, i int) string {
			code, snap := e.rest("POST", "/v1/snapshots", backups[tn], map[string]any{"guest_id": guests[i], "request_id": fmt.Sprintf("watch-s-%d", i)})
			if code != 200 {
				t.Fatalf("create snapshot: HTTP %d %v", code, snap)
			}
			return snap["id"].(string)
		},
	}, {
		name: "verifications", rest: "/v1/verifications:watch",
		grpc: func(ctx context.Context, conn *grpc.ClientConn, rv string, bm bool, s *eventStream) error {
			st, err := restorev1.NewVerificationServiceClient(conn).WatchVerifications(ctx, &restorev1.WatchVerificationsRequest{ResourceVersion: rv, AllowBookmarks: bm})
			if err != nil {
				return err
			}
			pump(s, st.Recv, func(m *restorev1.WatchVerificationsResponse) (string, string) {
				return m.Verification.GetId(), m.Verification.GetTenant()
			})
			return nil
		},
		change: func(t *testing.T, tn string, i int) string {
			code, body := e.rest("POST", "/v1/restores", partners[tn], map[string]any{
				"recovery_point_id": "rp-" + tn, "mode": "VERIFY", "vcpus": 1, "memory_mib": 256, "request_id": fmt.Sprintf("watch-v-%d", i)})
			if code != 200 {
				t.Fatalf("create VERIFY: HTTP %d %v", code, body)
			}
			id := body["id"].(string)
			agent.waitFor("the VERIFY run assigned", func(as []*restorev1.Assignment) bool {
				for _, a := range as {
					if a.Restore.GetId() == id {
						return true
					}
				}
				return false
			})
			if _, err := agent.client.ReportRestoreStatus(agent.ctx, &restorev1.ReportRestoreStatusRequest{
				ProtocolVersion: version.AgentProtocol, HostId: "kvm-w", RestoreId: id, State: restorev1.RestoreState_RESTORE_STATE_RUNNING,
				Boot: &restorev1.Boot{Verified: true}, Verification: &restorev1.Verification{Verdict: restorev1.Verdict_VERDICT_PASSED, Reason: "test agent"},
			}); err != nil {
				t.Fatal(err)
			}
			return id
		},
	}, {
		name: "audit", rest: "/v1/audit-events:watch",
		grpc: func(ctx context.Context, conn *grpc.ClientConn, rv string, bm bool, s *eventStream) error {
			st, err := restorev1.NewAuditServiceClient(conn).WatchAuditEvents(ctx, &restorev1.WatchAuditEventsRequest{ResourceVersion: rv, AllowBookmarks: bm})
			if err != nil {
				return err
			}
			pump(s, st.Recv, func(m *restorev1.WatchAuditEventsResponse) (string, string) {
				return m.Event.GetId(), m.Event.GetTenant()
			})
			return nil
		},
		change: func(t *testing.T, tn string, i int) string {
			e.createRestore(partners[tn], "rp-"+tn, fmt.Sprintf("watch-a-%d", i))
			return "" // any event: the write's id is its raft index
		},
	}}

	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			token := partners["acme"]
			if k.name == "hosts" {
				token = operator
			}
			// A never disconnects; B leaves after change 1 and comes back
			// with the resource_version of its last event, over REST.
			a := e.watchGRPC(t, k, token, "")
			b := e.watchREST(t, k, token, "")
			var other *eventStream // globex's, which must not see acme's
			if k.name != "hosts" {
				other = e.watchGRPC(t, k, partners["globex"], "")
			}
			for _, s := range []*eventStream{a, b, other} {
				if s != nil {
					s.until("the first listing", isBookmark)
				}
			}
			first := k.change(t, "acme", 1)
			seen := b.until("change 1", func(ev watchEvent) bool { return first == "" || ev.id == first })
			resumeAt := seen[len(seen)-1].rv
			b.cancel()
			k.change(t, "acme", 2)
			k.change(t, "acme", 3)
			b = e.watchREST(t, k, token, resumeAt)
			before := e.commitIndex()
			last := k.change(t, "acme", 4)
			isLast := func(ev watchEvent) bool {
				var v uint64
				fmt.Sscan(ev.rv, &v)
				return !isBookmark(ev) && v>>20 > before && (last == "" || ev.id == last)
			}
			var want []watchEvent
			for _, ev := range a.until("change 4 on the stream that stayed", isLast) {
				var v, from uint64
				fmt.Sscan(ev.rv, &v)
				fmt.Sscan(resumeAt, &from)
				if v > from && !isBookmark(ev) {
					want = append(want, ev)
				}
			}
			var got []watchEvent
			for _, ev := range b.until("change 4 on the resumed stream", isLast) {
				if !isBookmark(ev) {
					got = append(got, ev)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("resumed after %s:\n got %v\nwant %v", resumeAt, got, want)
			}
			if len(want) < 3 {
				t.Fatalf("only %d events after change 1, want at least changes 2, 3 and 4: %v", len(want), want)
			}
			if other != nil {
				mine := k.change(t, "globex", 5)
				for _, ev := range other.until("globex's own change", func(ev watchEvent) bool {
					return !isBookmark(ev) && ev.tenant == "globex" && (mine == "" || ev.id == mine)
				}) {
					if ev.tenant != "globex" {
						t.Fatalf("globex's %s stream carried %s's event %v", k.name, ev.tenant, ev)
					}
				}
			}
			t.Logf("%s: resumed at %s, %d events after it on both", k.name, resumeAt, len(want))
		})
	}

	t.Run("bad input and who may watch", func(t *testing.T) {
		for _, tc := range []struct {
			path, token string
			code        int
			msg         string
		}{
			{"/v1/hosts:watch?resource_version=abc", operator, 400, "resource_version \"abc\" is not one this service gave"},
			{"/v1/restores:watch?resource_version=-1", partners["acme"], 400, "is not one this service gave"},
			{"/v1/hosts:watch", partners["acme"], 403, ""},
			{"/v1/snapshots:watch?guest_id=" + strings.Repeat("x", 300), backups["acme"], 400, "guest_id"},
			{"/v1/audit-events:watch?tenant=globex", partners["acme"], 404, "not found"},
		} {
			code, body := e.rest("GET", tc.path, tc.token, nil)
			msg := fmt.Sprint(body["message"], body["error"], body["_raw"])
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("GET %s: HTTP %d %s, want %d with %q", tc.path, code, msg, tc.code, tc.msg)
			}
		}
		// A version from the future is not refused: nothing newer has
		// happened yet, and the stream waits for it.
		s, ctx := newStream(t)
		st, err := restorev1.NewHostServiceClient(e.conn).WatchHosts(withToken(ctx, operator), &restorev1.WatchHostsRequest{ResourceVersion: "999999999999999"})
		if err != nil {
			t.Fatal(err)
		}
		pump(s, st.Recv, func(m *restorev1.WatchHostsResponse) (string, string) { return m.Host.GetId(), "" })
		select {
		case ev := <-s.events:
			t.Fatalf("a watch from the future got %v", ev)
		case err := <-s.errs:
			t.Fatalf("a watch from the future ended: %v (%s)", err, status.Code(err))
		case <-time.After(300 * time.Millisecond):
		}
	})
}
