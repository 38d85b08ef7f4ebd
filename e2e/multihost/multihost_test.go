package multihost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/agent"
	"github.com/restored/restored/internal/testcluster"
)

const (
	running = restorev1.RestoreState_RESTORE_STATE_RUNNING
	ready   = restorev1.HostState_HOST_STATE_READY
	down    = restorev1.HostState_HOST_STATE_DOWN
)

// Three servers and two hosts, each in its own network namespace: a1 holds
// rp-web, a2 rp-mail, both hold rp-db. One story, each step on the state
// the one before left (the guests stay booted between them).
func TestThreeServersTwoHostsInNetworkNamespaces(t *testing.T) {
	l := startLab(t, map[string]map[string]string{
		"a1": {"rp-web": "web", "rp-db": "db"},
		"a2": {"rp-mail": "mail", "rp-db": "db"},
	})
	a1, a2 := l.agents["a1"], l.agents["a2"]
	var web, mail *restorev1.Restore

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"restores are placed on the host that holds the recovery point", func(t *testing.T) {
			web = l.create(&restorev1.CreateRestoreRequest{RecoveryPointId: "rp-web", Mode: restorev1.Mode_MODE_VIRTUALIZE, Vcpus: 1, MemoryMib: 256, TtlSeconds: 3600})
			mail = l.create(&restorev1.CreateRestoreRequest{RecoveryPointId: "rp-mail", Mode: restorev1.Mode_MODE_VIRTUALIZE, Vcpus: 1, MemoryMib: 256, TtlSeconds: 3600})
			for _, c := range []struct {
				r    *restorev1.Restore
				host *agentProc
			}{{web, a1}, {mail, a2}} {
				l.eventually(3*time.Minute, c.r.RecoveryPointId+" running", func() bool {
					x := l.restore(c.r.Id)
					if x != nil && x.State == restorev1.RestoreState_RESTORE_STATE_FAILED {
						t.Fatalf("restore of %s failed: %s", c.r.RecoveryPointId, x.StateReason)
					}
					return x != nil && x.State == running && x.GetBoot().GetVerified()
				})
				if x := l.restore(c.r.Id); x.HostId != c.host.hostID {
					t.Fatalf("restore of %s runs on %s, not on %s (the only holder)", c.r.RecoveryPointId, x.HostId, c.host.hostID)
				}
				if l.domain(c.host, c.r.Id) == nil {
					t.Fatalf("no domain of %s on %s", c.r.RecoveryPointId, c.host.hostID)
				}
			}
		}},
		{"agents settle on the server their host prefers", func(t *testing.T) {
			for _, a := range []*agentProc{a1, a2} {
				want := l.preferred(a)
				l.eventually(30*time.Second, a.hostID+" on "+want.ID, func() bool { return l.host(a.hostID).GetServerId() == want.ID })
			}
		}},
		{"the console and a screenshot work through a server that does not hold the tunnel", func(t *testing.T) {
			holder := l.host(a1.hostID).ServerId
			for _, p := range l.live() {
				if p.ID == holder {
					continue
				}
				// A guest's screen can be blank for a moment (a console
				// cleared while it settles): look again for a while.
				var w, h, colours int
				for try := 0; try < 15; try++ {
					if w, h, colours = l.console(t, p, web.Id); w > 0 && h > 0 && colours >= 2 {
						break
					}
					time.Sleep(time.Second)
				}
				t.Logf("console through %s (tunnel on %s): %dx%d, %d colours", p.ID, holder, w, h, colours)
				if w == 0 || h == 0 || colours < 2 {
					t.Fatalf("console through %s: %dx%d with %d colours: not the guest's screen", p.ID, w, h, colours)
				}
				code, ctype, png := l.get(p, "/v1/restores/"+web.Id+"/screenshot")
				if code != 200 || ctype != "image/png" || !strings.HasPrefix(string(png), "\x89PNG") {
					t.Fatalf("screenshot through %s: HTTP %d %s (%d bytes)", p.ID, code, ctype, len(png))
				}
			}
		}},
		{"kill -9 of an agent's server: the agent moves and its restore is untouched", func(t *testing.T) {
			victim := l.proc(l.host(a1.hostID).ServerId)
			before := l.domain(a1, web.Id)
			if before == nil || before.Spec.ID == nil {
				t.Fatalf("the restore's domain does not run on %s", a1.hostID)
			}
			watch := l.watch(a1.hostID, web.Id)
			victim.Kill()
			killed := time.Now()
			l.eventually(30*time.Second, a1.hostID+" registered through another server", func() bool {
				s := l.host(a1.hostID).GetServerId()
				return s != "" && s != victim.ID
			})
			t.Logf("%s moved from %s to %s in %s", a1.hostID, victim.ID, l.host(a1.hostID).ServerId, time.Since(killed).Round(time.Millisecond))
			// Past the heartbeat TTL (10 s) after the kill and a new leader's grace.
			time.Sleep(time.Until(killed.Add(15 * time.Second)))
			if bad := watch.stop(); len(bad) > 0 {
				t.Fatalf("while the agent failed over: %v", bad)
			}
			after := l.domain(a1, web.Id)
			if after == nil || !after.Running || *after.Spec.ID != *before.Spec.ID {
				t.Fatalf("the restore's domain changed: before %v, after %v", before.Spec.ID, after)
			}
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			l.eventually(60*time.Second, a1.hostID+" back on "+victim.ID, func() bool { return l.host(a1.hostID).GetServerId() == victim.ID })
		}},
		{"a host whose link goes down is DOWN, its VERIFY run moves to the other holder, and comes back clean", func(t *testing.T) {
			drain(t, l, a1.hostID, true)
			sleepy := &restorev1.VerifyOptions{AppChecks: []*restorev1.AppCheck{{Name: "long", Path: "/bin/sh", Args: []string{"-c", "sleep 500"}, TimeoutSeconds: 600}}}
			verify := l.create(&restorev1.CreateRestoreRequest{RecoveryPointId: "rp-db", Mode: restorev1.Mode_MODE_VERIFY, Vcpus: 1, MemoryMib: 256, Verify: sleepy})
			l.eventually(3*time.Minute, "the VERIFY run booted on "+a2.hostID, func() bool {
				x := l.restore(verify.Id)
				return x.GetHostId() == a2.hostID && x.State == running
			})
			drain(t, l, a1.hostID, false)
			if err := a2.ns.LinkDown(context.Background()); err != nil {
				t.Fatal(err)
			}
			cut := time.Now()
			l.eventually(40*time.Second, a2.hostID+" DOWN", func() bool { return l.host(a2.hostID).GetState() == down })
			t.Logf("%s DOWN %s after its link went down", a2.hostID, time.Since(cut).Round(time.Millisecond))
			l.eventually(3*time.Minute, "the VERIFY run placed again and booted on "+a1.hostID, func() bool {
				x := l.restore(verify.Id)
				return x.GetHostId() == a1.hostID && x.State == running
			})
			if x := l.restore(mail.Id); x.State != restorev1.RestoreState_RESTORE_STATE_LOST {
				t.Fatalf("the VIRTUALIZE restore on the DOWN host is %s, want LOST", x.State)
			}
			if err := a2.ns.LinkUp(context.Background()); err != nil {
				t.Fatal(err)
			}
			l.eventually(60*time.Second, a2.hostID+" READY again", func() bool { return l.host(a2.hostID).GetState() == ready })
			l.eventually(60*time.Second, a2.hostID+" removed what is no longer wanted", func() bool {
				return l.domain(a2, verify.Id) == nil && l.domain(a2, mail.Id) == nil
			})
			if d := l.domain(a1, verify.Id); d == nil || !d.Running {
				t.Fatalf("the VERIFY run on %s is gone: %v", a1.hostID, d)
			}
			ctx, cancel := l.ctx(l.partner)
			defer cancel()
			if _, err := restorev1.NewRestoreServiceClient(l.live()[0].Conn()).DeleteRestore(ctx, &restorev1.DeleteRestoreRequest{Id: verify.Id}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a backup job on another machine reads a snapshot through the host's NBD gate over TLS", func(t *testing.T) {
			l.backupFromAnotherHost(t, a1)
		}},
		{"a partitioned leader acknowledges nothing; the majority serves; it catches up", func(t *testing.T) {
			l.partition(t)
		}},
	}
	for _, s := range steps {
		// The lab's helpers fail the step that uses them.
		ok := t.Run(s.name, func(st *testing.T) {
			l.t = st
			defer func() { l.t = t }()
			s.run(st)
		})
		if !ok {
			return
		}
	}
}

// preferred is the server the agent's host prefers.
func (l *lab) preferred(a *agentProc) *testcluster.Proc {
	var addrs []string
	for _, p := range l.cluster.Procs {
		addrs = append(addrs, p.GRPC)
	}
	first := agent.PreferredOrder(a.hostID, addrs)[0]
	for _, p := range l.cluster.Procs {
		if p.GRPC == first {
			return p
		}
	}
	l.t.Fatalf("no server at %s", first)
	return nil
}

func drain(t *testing.T, l *lab, host string, on bool) {
	t.Helper()
	ctx, cancel := l.ctx(l.cluster.Token)
	defer cancel()
	hosts := restorev1.NewHostServiceClient(l.live()[0].Conn())
	var err error
	if on {
		_, err = hosts.DrainHost(ctx, &restorev1.DrainHostRequest{Id: host})
	} else {
		_, err = hosts.UndrainHost(ctx, &restorev1.UndrainHostRequest{Id: host})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// get GETs a path of p's REST API as the partner.
func (l *lab) get(p *testcluster.Proc, path string) (int, string, []byte) {
	req, _ := http.NewRequest("GET", "https://"+p.HTTP+path, nil)
	req.Header.Set("Authorization", "Bearer "+l.partner)
	resp, err := l.http.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// console opens a restore's console through p as a browser does (REST for
// the single-use URL, then its websocket) and reads the screen.
func (l *lab) console(t *testing.T, p *testcluster.Proc, id string) (w, h, colours int) {
	t.Helper()
	req, _ := http.NewRequest("POST", "https://"+p.HTTP+"/v1/restores/"+id+"/console", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+l.partner)
	resp, err := l.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		URL string `json:"url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || !strings.HasPrefix(body.URL, "https://"+p.HTTP+"/console/") {
		t.Fatalf("console link through %s: HTTP %d %q %v", p.ID, resp.StatusCode, body.URL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(body.URL, "https")+"/ws", &websocket.DialOptions{HTTPClient: l.http, Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("console websocket through %s: %v", p.ID, err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20)
	w, h, colours, err = screenOf(websocket.NetConn(ctx, ws, websocket.MessageBinary))
	if err != nil {
		t.Fatalf("console through %s: %v", p.ID, err)
	}
	return w, h, colours
}

// watcher records what should never happen while it runs: the host not
// READY, the restore not RUNNING.
type watcher struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	bad   []string
}

func (l *lab) watch(hostID, restoreID string) *watcher {
	w := &watcher{stopc: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.stopc:
				return
			case <-time.After(250 * time.Millisecond):
			}
			h, x := l.host(hostID), l.restore(restoreID)
			w.mu.Lock()
			if h != nil && h.State != ready {
				w.bad = append(w.bad, fmt.Sprintf("host %s was %s", hostID, h.State))
			}
			if x != nil && x.State != running {
				w.bad = append(w.bad, fmt.Sprintf("restore %s was %s (%s)", restoreID, x.State, x.StateReason))
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) stop() []string {
	close(w.stopc)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad
}
