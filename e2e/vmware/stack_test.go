package vmware

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testvcsim"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const root = "../.."

// stack is restored, a VMware agent for vcsim's cluster DC0_C0 (through
// the recording proxy) and the test's own vSphere client (straight to
// vcsim), which plays the vCenter administrator.
type stack struct {
	t        *testing.T
	c        *testcluster.Cluster
	srv      *testcluster.Proc
	sim      *testvcsim.Sim
	proxy    *testvcsim.Proxy
	vc       *govmomi.Client
	dc       *object.Datacenter
	ds       *object.Datastore
	ctl      string
	repo     string
	host     string
	agentLog string
	// agentArgs is the agent's command line; a restart keeps its work dir
	// (and the certificate it enrolled for there).
	agentArgs []string
	agent     *exec.Cmd
	done      chan struct{}
}

// startAgent starts the agent process (by PID; killAgent stops it).
func (s *stack) startAgent() {
	s.t.Helper()
	logf, err := os.OpenFile(s.agentLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.agent = exec.Command(s.agentArgs[0], s.agentArgs[1:]...)
	s.agent.Stdout, s.agent.Stderr = logf, logf
	s.agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.agent.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.agent.Wait(); logf.Close(); close(done) }()
	s.done = done
}

func (s *stack) killAgent() {
	if s.agent == nil {
		return
	}
	_ = s.agent.Process.Kill()
	<-s.done
	s.agent = nil
}

func (s *stack) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

func startStack(t *testing.T) *stack {
	t.Helper()
	bins := t.TempDir()
	build := func(name string) string {
		p, err := testcluster.BuildCommand(root, bins, name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	s := &stack{t: t, host: "vc-01", repo: t.TempDir(), agentLog: filepath.Join(bins, "agent.log")}
	restored, agentBin := build("restored"), build("hypervisor-agent")
	s.ctl = build("restorectl")
	ctx, cancel := s.ctx()
	defer cancel()
	c, err := testcluster.Start(ctx, testcluster.Options{Binary: restored, Dir: t.TempDir(), N: 1, Args: []string{"--scheduler-interval", "250ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	s.c, s.srv = c, c.Procs[0]
	for _, tenant := range []string{"acme", "globex"} {
		if err := c.CreateTenant(ctx, s.srv, tenant); err != nil {
			t.Fatal(err)
		}
	}
	s.sim = testvcsim.Start(t, root)
	s.proxy = testvcsim.StartProxy(t, s.sim)
	s.vc = login(t, s.sim.URL, s.sim.CAFile)
	f := find.NewFinder(s.vc.Client)
	if s.dc, err = f.DefaultDatacenter(ctx); err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(s.dc)
	if s.ds, err = f.Datastore(ctx, "LocalDS_0"); err != nil {
		t.Fatal(err)
	}

	creds := filepath.Join(t.TempDir(), "vc.json")
	pw, _ := s.sim.URL.User.Password()
	b, _ := json.Marshal(map[string]string{"username": s.sim.URL.User.Username(), "password": pw})
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		t.Fatal(err)
	}
	join, pin, err := c.JoinToken(ctx, s.srv, s.host)
	if err != nil {
		t.Fatal(err)
	}
	vcenter := *s.proxy.URL
	vcenter.User = nil
	args := []string{"--hypervisor", "vmware", "--vcenter", vcenter.String(), "--credentials", creds, "--vcenter-ca", s.sim.CAFile,
		"--datacenter", "DC0", "--cluster", "DC0_C0", "--datastore", "LocalDS_0", "--repository", s.repo,
		"--bridge", "DC0_DVPG0=acme",
		"--server", s.srv.GRPC, "--ca-fingerprint", pin, "--host-id", s.host, "--join-token", join,
		"--work-dir", shortDir(t), "--nbd-addr", "127.0.0.1:0", "--rescan-interval", "2s", "--reserve-memory-mib", "0"}
	s.agentArgs = append([]string{agentBin}, args...)
	s.startAgent()
	t.Cleanup(func() {
		s.killAgent()
		if t.Failed() {
			b, _ := os.ReadFile(s.agentLog)
			t.Logf("---- agent log ----\n%s", b)
			b, _ = os.ReadFile(s.srv.LogPath)
			t.Logf("---- restored log ----\n%s", tail(string(b), 60))
		}
	})
	return s
}

// shortDir is a temporary directory short enough for unix sockets.
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "vc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// login is a vSphere client that trusts the simulator's CA.
func login(t *testing.T, u *url.URL, ca string) *govmomi.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc := soap.NewClient(u, false)
	if err := sc.SetRootCAs(ca); err != nil {
		t.Fatal(err)
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := c.Login(ctx, u.User); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	return c
}

// createVM makes a powered-on VM in cluster DC0_C0 with one disk of
// size bytes on LocalDS_0, as an administrator would.
func (s *stack) createVM(name string, size int64) *object.VirtualMachine {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	f := find.NewFinder(s.vc.Client)
	f.SetDatacenter(s.dc)
	cluster, err := f.ClusterComputeResource(ctx, "DC0_C0")
	if err != nil {
		s.t.Fatal(err)
	}
	pool, err := cluster.ResourcePool(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	folders, err := s.dc.Folders(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		s.t.Fatal(err)
	}
	devices = append(devices, scsi)
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), s.ds.Reference(), fmt.Sprintf("[LocalDS_0] %s/%s.vmdk", name, name))
	disk.CapacityInKB = size / 1024
	devices = append(devices, disk)
	spec := types.VirtualMachineConfigSpec{Name: name, GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest64), NumCPUs: 2, MemoryMB: 1024,
		Files: &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"}}
	if spec.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd); err != nil {
		s.t.Fatal(err)
	}
	for _, ch := range spec.DeviceChange {
		if _, ok := ch.GetVirtualDeviceConfigSpec().Device.(*types.VirtualDisk); ok {
			ch.GetVirtualDeviceConfigSpec().FileOperation = types.VirtualDeviceConfigSpecFileOperationCreate
		}
	}
	task, err := folders.VmFolder.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	vm := object.NewVirtualMachine(s.vc.Client, info.Result.(types.ManagedObjectReference))
	if task, err = vm.PowerOn(ctx); err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		cctx, ccancel := s.ctx()
		defer ccancel()
		if task, err := vm.PowerOff(cctx); err == nil {
			_ = task.Wait(cctx)
		}
		if task, err := vm.Destroy(cctx); err == nil {
			_ = task.Wait(cctx)
		}
	})
	return vm
}

// writeDisk puts data on the VM's disk as vSphere keeps it: a VMDK
// descriptor and its flat extent, uploaded through the datastore.
func (s *stack) writeDisk(name string, data []byte) {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	desc := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\n# Extent description\nRW %d VMFS \"%s-flat.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"13\"\n", len(data)/512, name)
	for _, f := range []struct {
		path string
		b    []byte
	}{{name + "/" + name + ".vmdk", []byte(desc)}, {name + "/" + name + "-flat.vmdk", data}} {
		p := soap.DefaultUpload
		p.ContentLength = int64(len(f.b))
		if err := s.ds.Upload(ctx, bytes.NewReader(f.b), f.path, &p); err != nil {
			s.t.Fatalf("upload %s: %v", f.path, err)
		}
	}
}

// heldDisk is the VM's flat disk as vcsim holds it, downloaded through
// the datastore into a local file.
func (s *stack) heldDisk(name string) string {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	out := filepath.Join(s.t.TempDir(), name+"-flat.raw")
	if err := s.ds.DownloadFile(ctx, name+"/"+name+"-flat.vmdk", out, &soap.DefaultDownload); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// setChangeID sets the change id vSphere's CBT would report for the VM's
// disk (vcsim keeps what it is given; it does not track changes itself).
// vcsim empties the disk's descriptor when a disk is edited: write the
// disk after.
func (s *stack) setChangeID(vm *object.VirtualMachine, id string) { s.editDisk(vm, id, 0) }

// editDisk sets the disk's change id and, when size > 0, grows it.
func (s *stack) editDisk(vm *object.VirtualMachine, id string, size int64) {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	devices, err := vm.Device(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	disk := devices.SelectByType((*types.VirtualDisk)(nil))[0].(*types.VirtualDisk)
	disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId = id
	if size > 0 {
		disk.CapacityInBytes, disk.CapacityInKB = size, size/1024
	}
	if err := vm.EditDevice(ctx, disk); err != nil {
		s.t.Fatal(err)
	}
	devices, _ = vm.Device(ctx)
	got := devices.SelectByType((*types.VirtualDisk)(nil))[0].(*types.VirtualDisk)
	if got.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId != id || (size > 0 && got.CapacityInBytes != size) {
		s.t.Fatalf("vcsim kept change id %q and %d bytes, not %q and %d", got.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId, got.CapacityInBytes, id, size)
	}
}

// snapshots lists the VM's vSphere snapshots by name.
func (s *stack) snapshots(vm *object.VirtualMachine) []string {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	var names []string
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(ts []types.VirtualMachineSnapshotTree) {
		for _, t := range ts {
			names = append(names, t.Name)
			walk(t.ChildSnapshotList)
		}
	}
	var mvm mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"snapshot"}, &mvm); err != nil {
		s.t.Fatal(err)
	}
	if mvm.Snapshot != nil {
		walk(mvm.Snapshot.RootSnapshotList)
	}
	return names
}

// ctlRun runs restorectl with token and returns its output.
func (s *stack) ctlRun(token string, args ...string) (string, error) {
	cmd := exec.Command(s.ctl, append([]string{"--addr", s.srv.GRPC, "--ca-cert", s.c.CACert, "--token", token}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String() + errOut.String(), err
}

// backupRun runs restorectl backup run and returns its JSON summary.
func (s *stack) backupRun(token, guestID string, args ...string) backupjob.Summary {
	s.t.Helper()
	sum, printed, err := s.c.BackupRun(s.ctl, s.srv, token, guestID, s.repo, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("restorectl backup run %v:\n%s", args, printed)
	return sum
}

// domain waits until the host reports a VM of that name and returns it.
func (s *stack) domain(name string) *restorev1.HostDomain {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if d := s.domainIfAny(name); d != nil {
			return d
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("host %s did not report VM %s within a minute", s.host, name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// domainIfAny is the host's reported domain of that name, or nil.
func (s *stack) domainIfAny(name string) *restorev1.HostDomain {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := restorev1.NewHostServiceClient(s.srv.Conn()).ListHostDomains(testcluster.Ctx(ctx, s.c.Token), &restorev1.ListHostDomainsRequest{Id: s.host})
	if err != nil {
		return nil
	}
	for _, d := range l.Domains {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// qemuImgCompare says whether two images hold the same data.
func qemuImgCompare(t *testing.T, a, b string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "compare", a, b).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img compare %s %s: %v\n%s", a, b, err, out)
	}
}

// waitSnapshot waits until the snapshot is in state and returns it.
func (s *stack) waitSnapshot(ctx context.Context, c restorev1.SnapshotServiceClient, id string, state restorev1.SnapshotState) *restorev1.Snapshot {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := c.GetSnapshot(ctx, &restorev1.GetSnapshotRequest{Id: id})
		if err == nil && got.Snapshot.State == state {
			return got.Snapshot
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("snapshot %s not %s within a minute: %v %v", id, state, got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
