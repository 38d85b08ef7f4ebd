package vmware

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restored/restored/internal/testvcsim"
	"github.com/vmware/govmomi/find"
)

func connect(t *testing.T) (*Driver, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sim := testvcsim.Start(t, "../..")
	d, err := Connect(ctx, Login{URL: sim.URL.String(), CACert: sim.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Logout(context.Background()) })
	vms, err := find.NewFinder(d.Client().Client).VirtualMachineList(ctx, "*")
	if err != nil || len(vms) == 0 {
		t.Fatalf("vcsim has no VMs: %v", err)
	}
	return d, vms[0].Reference().Value
}

// Against vcsim: change tracking turns on once, snapshots are taken
// (quiesced as asked, as vSphere reports it), listed and removed.
func TestSnapshotsOnVCSim(t *testing.T) {
	d, vm := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if changed, err := d.EnableChangeTracking(ctx, vm); err != nil || !changed {
		t.Fatalf("enable change tracking: changed=%v %v", changed, err)
	}
	if changed, err := d.EnableChangeTracking(ctx, vm); err != nil || changed {
		t.Fatalf("enable change tracking again: changed=%v %v (want a no-op)", changed, err)
	}
	if on, err := d.ChangeTracking(ctx, vm); err != nil || !on {
		t.Fatalf("change tracking: %v %v", on, err)
	}
	s1, err := d.CreateSnapshot(ctx, vm, "restored-s1", "test", true)
	if err != nil {
		t.Fatal(err)
	}
	if !s1.Quiesced || s1.QuiesceReason != "" || len(s1.Disks) == 0 || s1.Disks[0].Capacity <= 0 {
		t.Fatalf("quiesced snapshot: %+v", s1)
	}
	t.Logf("snapshot %s: quiesced=%v disks=%+v", s1.Moref, s1.Quiesced, s1.Disks)
	s2, err := d.CreateSnapshot(ctx, vm, "restored-s2", "test", false)
	if err != nil || s2.Quiesced {
		t.Fatalf("crash-consistent snapshot: %+v %v", s2, err)
	}
	list, err := d.Snapshots(ctx, vm)
	if err != nil || len(list) != 2 || list[0].Name != "restored-s1" || list[1].Name != "restored-s2" {
		t.Fatalf("snapshots: %+v %v", list, err)
	}
	if err := d.RemoveSnapshot(ctx, vm, s1.Moref); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveSnapshot(ctx, vm, s1.Moref); err != nil {
		t.Fatalf("removing a removed snapshot: %v", err)
	}
	if list, _ := d.Snapshots(ctx, vm); len(list) != 1 || list[0].Moref != s2.Moref {
		t.Fatalf("after the removal: %+v", list)
	}
	if err := d.RemoveSnapshot(ctx, vm, s2.Moref); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSnapshot(ctx, "vm-99999", "x", "test", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown VM: %v, want ErrNotFound", err)
	}
}

// recordedAreas answers QueryChangedDiskAreas with the responses in
// testdata (vcsim does not implement it) and passes everything else on.
type recordedAreas struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *recordedAreas) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	if !bytes.Contains(body, []byte("QueryChangedDiskAreas")) {
		return r.next.RoundTrip(req)
	}
	r.mu.Lock()
	r.seen = append(r.seen, string(body))
	r.mu.Unlock()
	offset := regexp.MustCompile(`<startOffset>(\d+)</startOffset>`).FindSubmatch(body)
	if offset == nil {
		return nil, errors.New("no startOffset in the request")
	}
	resp, err := os.ReadFile(filepath.Join("testdata", "changed-areas-"+string(offset[1])+".xml"))
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/xml; charset=utf-8"}},
		Body: io.NopCloser(bytes.NewReader(resp)), Request: req}, nil
}

// QueryChangedDiskAreas with a response in vSphere's wire format (see
// testdata/README.md: vcsim does not implement the call): the pages are
// followed until the disk is covered and every area comes back.
func TestChangedAreasFollowVSpheresPages(t *testing.T) {
	d, vm := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap, err := d.CreateSnapshot(ctx, vm, "restored-cbt", "test", false)
	if err != nil {
		t.Fatal(err)
	}
	hc := &d.Client().Client.Client.Client
	rec := &recordedAreas{next: hc.Transport}
	hc.Transport = rec
	disk := Disk{Key: 2000, Capacity: 1 << 30}
	const since = "52 de c0 d9 b9 43 9d 10-61 d5 4c 1b e9 7b 65 63/12"
	got, err := d.ChangedAreas(ctx, vm, snap.Moref, disk, since)
	if err != nil {
		t.Fatal(err)
	}
	want := []Extent{{0, 1 << 20}, {100 << 20, 4 << 20}, {1<<30 - 64<<10, 64 << 10}}
	if len(got) != len(want) {
		t.Fatalf("areas %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("areas %+v, want %+v", got, want)
		}
	}
	if len(rec.seen) != 2 {
		t.Fatalf("%d queries, want 2 pages", len(rec.seen))
	}
	for _, q := range rec.seen {
		for _, must := range []string{"<deviceKey>2000</deviceKey>", "<changeId>" + since + "</changeId>", snap.Moref} {
			if !strings.Contains(q, must) {
				t.Fatalf("the query lacks %s:\n%s", must, q)
			}
		}
	}
	if _, err := d.ChangedAreas(ctx, vm, snap.Moref, disk, ""); err == nil {
		t.Fatal("a query without a change id was sent")
	}
}

// A vCenter is reached only with its certificate trusted and a valid
// login; each refusal says which.
func TestConnectRefusesAnUntrustedVCenterAndABadLogin(t *testing.T) {
	sim := testvcsim.Start(t, "../..")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := *sim.URL
	u.User = nil
	user := sim.URL.User.Username()
	pass, _ := sim.URL.User.Password()
	for _, tc := range []struct {
		name string
		l    Login
		want string
	}{
		{"the system's CAs do not know vcsim's", Login{URL: u.String(), User: user, Password: pass}, "certificate"},
		{"a wrong password", Login{URL: u.String(), User: user, Password: "nope", CACert: sim.CAFile}, "log in to"},
		{"no user", Login{URL: u.String(), CACert: sim.CAFile}, "no user to log in as"},
		{"not a URL of a vCenter", Login{URL: "vc.example.com", User: user}, "want https://HOST/sdk"},
		{"a CA file that is not there", Login{URL: u.String(), User: user, CACert: "/nonexistent.pem"}, "vcenter CA"},
	} {
		d, err := Connect(ctx, tc.l)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if d != nil {
			_ = d.Logout(ctx)
		}
	}
	d, err := Connect(ctx, Login{URL: u.String(), User: user, Password: pass, CACert: sim.CAFile})
	if err != nil {
		t.Fatalf("the right login: %v", err)
	}
	_ = d.Logout(ctx)
}

func TestCredentialsFilesAreJSONWithAUser(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, want string }{
		{"good", `{"username":"backup@vsphere.local","password":"s3cret"}`, ""},
		{"no user", `{"password":"x"}`, "no username"},
		{"not JSON", `user:pass`, "want {"},
	} {
		p := filepath.Join(dir, tc.name)
		_ = os.WriteFile(p, []byte(tc.body), 0o600)
		u, pw, err := ReadCredentials(p)
		switch {
		case tc.want == "" && (err != nil || u != "backup@vsphere.local" || pw != "s3cret"):
			t.Errorf("%s: %q %q %v", tc.name, u, pw, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, _, err := ReadCredentials(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file")
	}
}
