package vmware

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testvcsim"
)

const (
	mib      = 1 << 20
	diskSize = 64 * mib
	// The change ids vSphere's CBT would report: an epoch and a sequence.
	epoch  = "52 de c0 d9 b9 43 9d 10-61 d5 4c 1b e9 7b 65 63"
	epoch2 = "52 aa 00 11 22 33 44 55-66 77 88 99 aa bb cc dd"
)

// A VMware guest is backed up through the same API and the same
// `restorectl backup run` as a KVM one: the host is the vCenter cluster,
// the FULL recovery point holds exactly the disk vcsim holds, the
// INCREMENTAL reads only the areas vSphere says changed since the FULL's
// change id, and a change id vSphere no longer honours gives a FULL with
// the reason. Snapshots leave vSphere when released; another tenant sees
// nothing.
func TestVMwareGuestsAreBackedUpThroughTheSameJob(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	acme, err := s.c.MintToken(ctx, s.srv, "acme", "backup")
	if err != nil {
		t.Fatal(err)
	}
	globex, err := s.c.MintToken(ctx, s.srv, "globex", "backup")
	if err != nil {
		t.Fatal(err)
	}
	vm := s.createVM("app-01", diskSize)
	data := make([]byte, diskSize)
	for _, off := range []int{0, 5 * mib, 40*mib + 4096} { // some data, mostly zeros
		_, _ = rand.Read(data[off : off+2*mib])
	}
	s.setChangeID(vm, epoch+"/1")
	s.writeDisk("app-01", data)

	// The host: the cluster, with vSphere's capabilities and size.
	var hosts string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		hosts, _ = s.ctlRun(s.c.Token, "host", "list")
		if strings.Contains(hosts, s.host) && strings.Contains(hosts, "READY") {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, want := range []string{s.host, "vmware", "vsphere", "snapshots,quiesce,changed-blocks"} {
		if !strings.Contains(hosts, want) {
			t.Fatalf("restorectl host list lacks %q:\n%s", want, hosts)
		}
	}
	t.Logf("restorectl host list:\n%s", hosts)

	// The guest: the cluster's VM, by instance UUID.
	d := s.domain("app-01")
	if d.Moref != vm.Reference().Value || d.Uuid == "" || !d.Running || len(d.Disks) != 1 || d.Disks[0] != "scsi0-0" {
		t.Fatalf("the inventory's app-01: %+v (moref %s)", d, vm.Reference().Value)
	}
	guests := restorev1.NewGuestServiceClient(s.srv.Conn())
	admin := testcluster.Ctx(ctx, s.c.Token)
	reg, err := guests.RegisterGuest(admin, &restorev1.RegisterGuestRequest{Hypervisor: restorev1.Hypervisor_HYPERVISOR_VMWARE,
		HostId: s.host, Uuid: d.Uuid, Moref: d.Moref, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	g := reg.Guest
	if g.State != restorev1.GuestState_GUEST_STATE_VERIFIED || g.Name != "app-01" {
		t.Fatalf("registered: %+v", g)
	}
	if _, err := guests.RegisterGuest(admin, &restorev1.RegisterGuestRequest{Hypervisor: restorev1.Hypervisor_HYPERVISOR_VMWARE,
		HostId: s.host, Moref: d.Moref, Tenant: "globex"}); err == nil || !strings.Contains(err.Error(), "another tenant's guest") {
		t.Fatalf("globex registered acme's VM: %v", err)
	}

	// 1. FULL, quiesced through VMware Tools: byte for byte what vcsim holds.
	full := s.backupRun(acme, g.Id, "--quiesce")
	if full.Kind != "FULL" || full.Consistency != "QUIESCED" || full.BytesRead != diskSize {
		t.Fatalf("the FULL: %+v", full)
	}
	qemuImgCompare(t, filepath.Join(full.Dir, "scsi0-0.qcow2"), s.heldDisk("app-01"))
	if snaps := s.snapshots(vm); len(snaps) != 0 {
		t.Fatalf("vSphere snapshots after the release: %v", snaps)
	}

	// 2. The guest writes 3 MiB; vSphere's CBT says where (the proxy's
	// recorded answer); the INCREMENTAL reads those areas and nothing else.
	changed := []testvcsim.Area{{Start: 1 * mib, Length: mib}, {Start: 50 * mib, Length: 2 * mib}}
	for _, a := range changed {
		_, _ = rand.Read(data[a.Start : a.Start+a.Length])
	}
	s.setChangeID(vm, epoch+"/2")
	s.writeDisk("app-01", data)
	s.proxy.SetAnswer(func(q testvcsim.Query) testvcsim.Answer {
		if q.ChangeID != epoch+"/1" {
			return testvcsim.Answer{Fault: "InvalidArgument", FaultString: "A specified parameter was not correct: changeId"}
		}
		// vSphere answers in pages: the first half, then the rest.
		half := int64(diskSize / 2)
		a := testvcsim.Answer{StartOffset: q.StartOffset, Length: half}
		for _, c := range changed {
			if c.Start >= q.StartOffset && c.Start < q.StartOffset+half {
				a.Areas = append(a.Areas, c)
			}
		}
		return a
	})
	inc := s.backupRun(acme, g.Id, "--incremental")
	if inc.Kind != "INCREMENTAL" || inc.Backing != full.RecoveryPointID || inc.BytesChanged != 3*mib || inc.BytesRead != 3*mib {
		t.Fatalf("the INCREMENTAL: %+v", inc)
	}
	qemuImgCompare(t, filepath.Join(inc.Dir, "scsi0-0.qcow2"), s.heldDisk("app-01"))
	qs := s.proxy.Queries()
	if len(qs) != 2 || qs[0].ChangeID != epoch+"/1" || qs[0].VM != vm.Reference().Value || qs[0].Snapshot == "" || qs[1].StartOffset != diskSize/2 {
		t.Fatalf("QueryChangedDiskAreas calls: %+v", qs)
	}

	// 3. The chain check. CBT reset (a new epoch): a FULL, saying so.
	s.setChangeID(vm, epoch2+"/1")
	s.writeDisk("app-01", data)
	reset := s.backupRun(acme, g.Id, "--incremental")
	if reset.Kind != "FULL" || !strings.Contains(reset.KindReason, "change tracking of disk scsi0-0 was reset") {
		t.Fatalf("after a CBT reset: %+v", reset)
	}
	// A change id vSphere refuses (the proxy answers InvalidArgument): a
	// FULL with vSphere's words, never a wrong incremental.
	s.setChangeID(vm, epoch2+"/5")
	s.writeDisk("app-01", data)
	s.proxy.SetAnswer(func(testvcsim.Query) testvcsim.Answer {
		return testvcsim.Answer{Fault: "InvalidArgument", FaultString: "A specified parameter was not correct: changeId"}
	})
	refused := s.backupRun(acme, g.Id, "--incremental")
	if refused.Kind != "FULL" || !strings.Contains(refused.KindReason, "does not accept the last backup's change id") || !strings.Contains(refused.KindReason, "changeId") {
		t.Fatalf("after a refused change id: %+v", refused)
	}
	qemuImgCompare(t, filepath.Join(refused.Dir, "scsi0-0.qcow2"), s.heldDisk("app-01"))

	// 4. A job that dies: the lease ends the snapshot, and vSphere's with it.
	snaps := restorev1.NewSnapshotServiceClient(s.srv.Conn())
	actx := testcluster.Ctx(ctx, acme)
	leased, err := snaps.CreateSnapshot(actx, &restorev1.CreateSnapshotRequest{GuestId: g.Id, LeaseSeconds: 10})
	if err != nil {
		t.Fatal(err)
	}
	id := leased.Snapshot.Id
	s.waitSnapshot(actx, snaps, id, restorev1.SnapshotState_SNAPSHOT_STATE_READY)
	if names := s.snapshots(vm); len(names) != 1 || names[0] != "restored-"+id {
		t.Fatalf("vSphere snapshots of a READY snapshot: %v", names)
	}
	ended := s.waitSnapshot(actx, snaps, id, restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED)
	if !strings.Contains(ended.StateReason, "lease ran out") {
		t.Fatalf("released because %q", ended.StateReason)
	}
	if names := s.snapshots(vm); len(names) != 0 {
		t.Fatalf("vSphere snapshots after the lease ran out: %v", names)
	}

	// 5. The agent restarts while serving: the snapshot fails (its export
	// ended) and the agent removes what vSphere still holds of it.
	served, err := snaps.CreateSnapshot(actx, &restorev1.CreateSnapshotRequest{GuestId: g.Id, LeaseSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	s.waitSnapshot(actx, snaps, served.Snapshot.Id, restorev1.SnapshotState_SNAPSHOT_STATE_READY)
	s.killAgent()
	s.startAgent()
	lost := s.waitSnapshot(actx, snaps, served.Snapshot.Id, restorev1.SnapshotState_SNAPSHOT_STATE_FAILED)
	if !strings.Contains(lost.StateReason, "restarted") {
		t.Fatalf("failed because %q", lost.StateReason)
	}
	if names := s.snapshots(vm); len(names) != 0 {
		t.Fatalf("vSphere snapshots after the agent restarted: %v", names)
	}

	// 6. The INCREMENTAL (a qcow2 on the FULL) restored onto VMware.
	partner, err := s.c.MintToken(ctx, s.srv, "acme", "partner")
	if err != nil {
		t.Fatal(err)
	}
	s.restoreOntoVMware(t, partner, inc)

	// 7. The disk grows: a FULL, saying so.
	grown := make([]byte, diskSize+16*mib)
	copy(grown, data)
	s.editDisk(vm, epoch2+"/6", int64(len(grown)))
	s.writeDisk("app-01", grown)
	resized := s.backupRun(acme, g.Id, "--incremental")
	if resized.Kind != "FULL" || !strings.Contains(resized.KindReason, "was resized from 67108864 to 83886080 bytes") {
		t.Fatalf("after a resize: %+v", resized)
	}
	qemuImgCompare(t, filepath.Join(resized.Dir, "scsi0-0.qcow2"), s.heldDisk("app-01"))

	// 8. Another tenant: no such guest.
	if out, err := s.ctlRun(globex, "backup", "run", "--guest", g.Id, "--repository", t.TempDir()); err == nil || !strings.Contains(out, "not found") {
		t.Fatalf("globex backed up acme's VMware guest: %v\n%s", err, out)
	}
	if snaps := s.snapshots(vm); len(snaps) != 0 {
		t.Fatalf("vSphere snapshots left: %v", snaps)
	}
}
