package vmware

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/testcluster"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// restoreOntoVMware restores a recovery point the backup job wrote onto the
// VMware host: the disk converted and uploaded (with progress), a VM with
// the recovery point's hardware, powered on, RUNNING with what vSphere
// reports; DELETE and the TTL remove the VM and its files.
func (s *stack) restoreOntoVMware(t *testing.T, partner string, rp backupjob.Summary) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pctx := testcluster.Ctx(ctx, partner)
	rps := restorev1.NewRecoveryPointServiceClient(s.srv.Conn())
	eventually(t, time.Minute, "the VMware host reports "+rp.RecoveryPointID, func() bool {
		got, err := rps.GetRecoveryPoint(pctx, &restorev1.GetRecoveryPointRequest{Id: rp.RecoveryPointID})
		return err == nil && got.RecoveryPoint.Valid && slices.Contains(got.RecoveryPoint.HostIds, s.host)
	})
	restores := restorev1.NewRestoreServiceClient(s.srv.Conn())
	// Every revision of the restore, from the watch stream.
	var (
		mu   sync.Mutex
		revs []*restorev1.Restore
	)
	wctx, wcancel := context.WithCancel(pctx)
	defer wcancel()
	stream, err := restores.WatchRestores(wctx, &restorev1.WatchRestoresRequest{RecoveryPointId: rp.RecoveryPointID})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			revs = append(revs, msg.Restore)
			mu.Unlock()
		}
	}()
	// Bridged to the portgroup the host offers acme; the guest app-01 is
	// acme's, so the restore boots with its link down (the identity guard).
	created, err := restores.CreateRestore(pctx, &restorev1.CreateRestoreRequest{RecoveryPointId: rp.RecoveryPointID,
		Mode: restorev1.Mode_MODE_VIRTUALIZE, Vcpus: 2, MemoryMib: 512, RequestId: "vmw-1",
		Network: &restorev1.Network{Kind: restorev1.NetworkKind_NETWORK_KIND_BRIDGED, Bridge: "DC0_DVPG0"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Restore.Id
	var running *restorev1.Restore
	eventually(t, 2*time.Minute, "the restore RUNNING", func() bool {
		got, err := restores.GetRestore(pctx, &restorev1.GetRestoreRequest{Id: id})
		if err == nil && got.Restore.State == restorev1.RestoreState_RESTORE_STATE_FAILED {
			t.Fatalf("the restore failed: %s", got.Restore.StateReason)
		}
		running = got.GetRestore()
		return err == nil && running.State == restorev1.RestoreState_RESTORE_STATE_RUNNING
	})
	if running.HostId != s.host || !strings.Contains(running.StateReason, "vm-powered-on") || !running.Boot.GetVerified() {
		t.Fatalf("RUNNING: host %s, %q, boot %v", running.HostId, running.StateReason, running.Boot)
	}
	t.Logf("RUNNING: %s", running.StateReason)
	mu.Lock()
	var upload *restorev1.Progress
	for _, r := range revs {
		if p := r.GetProgress(); p != nil && strings.HasPrefix(p.Step, "uploading disk scsi0-0") {
			t.Logf("progress: %s (%+v)", r.StateReason, p)
			upload = p
		}
	}
	mu.Unlock()
	if upload == nil || upload.TotalBytes != diskSize || upload.DoneBytes != diskSize || upload.BytesPerSecond <= 0 {
		t.Fatalf("no upload progress reported to the end: %+v", upload)
	}

	// In vSphere: the VM, its hardware, its disk as uploaded, powered on.
	vm := s.findVM("restored-" + id)
	var props mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config", "runtime.powerState"}, &props); err != nil {
		t.Fatal(err)
	}
	c := props.Config
	if c.Hardware.NumCPU != 2 || c.Hardware.MemoryMB != 512 || c.Firmware != "bios" || c.GuestId != string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest) ||
		props.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Fatalf("the restore VM: cpus %d memory %d firmware %s guest %s power %s", c.Hardware.NumCPU, c.Hardware.MemoryMB, c.Firmware, c.GuestId, props.Runtime.PowerState)
	}
	var disks, pvscsi, nics int
	for _, dev := range c.Hardware.Device {
		switch d := dev.(type) {
		case *types.VirtualVmxnet3:
			nics++
			if cn := d.Connectable; cn == nil || cn.Connected || cn.StartConnected {
				t.Fatalf("the NIC of a restore held down is connected: %+v", cn)
			}
		case *types.ParaVirtualSCSIController:
			pvscsi++
		case *types.VirtualDisk:
			disks++
			if d.CapacityInBytes != diskSize && d.CapacityInKB*1024 != diskSize {
				t.Fatalf("the restore VM's disk has %d bytes", d.CapacityInBytes)
			}
		}
	}
	if disks != 1 || pvscsi != 1 || nics != 1 {
		t.Fatalf("the restore VM has %d disks, %d paravirtual SCSI controllers and %d vmxnet3 NICs, want 1 of each (a Linux recovery point)", disks, pvscsi, nics)
	}
	if !strings.Contains(running.Network.GetLinkDownReason(), "link-up") {
		t.Fatalf("the restore's link_down_reason: %q", running.Network.GetLinkDownReason())
	}
	// Link up: the NIC connects.
	if _, err := restores.LinkUpRestore(pctx, &restorev1.LinkUpRestoreRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the restore VM's NIC connected", func() bool {
		var p mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), []string{"config.hardware.device"}, &p); err != nil {
			return false
		}
		for _, dev := range p.Config.Hardware.Device {
			if n, ok := dev.(*types.VirtualVmxnet3); ok {
				return n.Connectable != nil && n.Connectable.Connected && n.Connectable.StartConnected
			}
		}
		return false
	})
	uploaded := filepath.Join(t.TempDir(), "uploaded.raw")
	if err := s.ds.DownloadFile(ctx, "restored-"+id+"/scsi0-0-flat.vmdk", uploaded, &soap.DefaultDownload); err != nil {
		t.Fatal(err)
	}
	qemuImgCompare(t, filepath.Join(rp.Dir, "scsi0-0.qcow2"), uploaded)
	if d := s.domainIfAny("restored-" + id); d != nil {
		t.Fatalf("the restore VM is in the host's inventory of guests: %+v", d)
	}

	// DELETE removes the VM and its directory.
	if _, err := restores.DeleteRestore(pctx, &restorev1.DeleteRestoreRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	s.waitGone(pctx, t, restores, id)

	// The TTL too.
	short, err := restores.CreateRestore(pctx, &restorev1.CreateRestoreRequest{RecoveryPointId: rp.RecoveryPointID,
		Mode: restorev1.Mode_MODE_VIRTUALIZE, Vcpus: 1, MemoryMib: 256, TtlSeconds: 8, RequestId: "vmw-ttl"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the short restore EXPIRED", func() bool {
		got, err := restores.GetRestore(pctx, &restorev1.GetRestoreRequest{Id: short.Restore.Id})
		return err == nil && got.Restore.State == restorev1.RestoreState_RESTORE_STATE_EXPIRED && got.Restore.DestroyTime != nil
	})
	s.waitGone(pctx, t, restores, short.Restore.Id)
}

// waitGone waits until a restore's VM and datastore directory are gone.
func (s *stack) waitGone(ctx context.Context, t *testing.T, restores restorev1.RestoreServiceClient, id string) {
	t.Helper()
	eventually(t, time.Minute, "restore "+id+" torn down", func() bool {
		got, err := restores.GetRestore(ctx, &restorev1.GetRestoreRequest{Id: id})
		return err == nil && got.Restore.DestroyTime != nil
	})
	if vm := s.findVMIfAny("restored-" + id); vm != nil {
		t.Fatalf("the VM of restore %s is still in vSphere", id)
	}
	if _, _, err := s.ds.Download(ctx, "restored-"+id+"/scsi0-0-flat.vmdk", &soap.DefaultDownload); err == nil {
		t.Fatalf("the disk of restore %s is still on the datastore", id)
	}
}

func (s *stack) findVMIfAny(name string) *object.VirtualMachine {
	ctx, cancel := s.ctx()
	defer cancel()
	f := find.NewFinder(s.vc.Client)
	f.SetDatacenter(s.dc)
	vm, err := f.VirtualMachine(ctx, name)
	if err != nil {
		return nil
	}
	return vm
}

func (s *stack) findVM(name string) *object.VirtualMachine {
	s.t.Helper()
	vm := s.findVMIfAny(name)
	if vm == nil {
		s.t.Fatalf("vSphere has no VM %s", name)
	}
	return vm
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
