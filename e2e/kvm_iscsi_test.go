package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
	"libvirt.org/go/libvirtxml"
)

// startISCSIExport creates an iSCSI EXPORT restore of rp-1, waits until it
// runs, and makes sure no daemon of it outlives the test (by their PIDs).
func (s *kvmStack) startISCSIExport(requestID string, readWrite bool) map[string]any {
	s.t.Helper()
	code, body := s.rest("POST", "/v1/restores", s.acme, map[string]any{"recovery_point_id": "rp-1", "mode": "EXPORT",
		"export": map[string]any{"read_write": readWrite, "protocol": "ISCSI"}, "request_id": requestID})
	if code != 200 {
		s.t.Fatalf("create an iSCSI export: HTTP %d %v", code, body)
	}
	id := body["id"].(string)
	s.t.Cleanup(func() {
		dir := filepath.Join(s.work, "restores", id)
		for _, f := range []string{"tgtd.pid", "export.pid"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		// A killed daemon leaves its raw views mounted: detach them.
		views, _ := filepath.Glob(filepath.Join(dir, "*.raw"))
		for _, v := range views {
			_ = syscall.Unmount(v, syscall.MNT_DETACH)
		}
	})
	return s.waitState(id, "RESTORE_STATE_RUNNING", 2*time.Minute, func(r map[string]any) bool { return r["export"] != nil })
}

// chap asks for a new CHAP secret of an iSCSI export.
func (s *kvmStack) chap(id string) (string, string) {
	s.t.Helper()
	code, c := s.rest("POST", "/v1/restores/"+id+"/credentials", s.acme, map[string]any{})
	if code != 200 || c["chap_user"] == nil || c["chap_secret"] == nil {
		s.t.Fatalf("CHAP credentials: HTTP %d %v", code, c)
	}
	return c["chap_user"].(string), c["chap_secret"].(string)
}

// withCHAP puts a CHAP user and secret into an iscsi:// URI.
func withCHAP(uri, user, secret string) string {
	return strings.Replace(uri, "iscsi://", "iscsi://"+user+"%"+secret+"@", 1)
}

// bootFromISCSI starts a libvirt domain (the partner's hypervisor's
// stand-in) whose only disk is the export's LUN over iSCSI with CHAP,
// and waits for the test image's serial marker.
func (s *kvmStack) bootFromISCSI(disk map[string]any, user, secret string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := testimage.DirForQEMU(s.t, "restored-initiator-")
	usage := "restored-e2e-" + strconv.Itoa(os.Getpid())
	secretXML := filepath.Join(dir, "secret.xml")
	if err := os.WriteFile(secretXML, []byte("<secret ephemeral='no' private='yes'><usage type='iscsi'><target>"+usage+"</target></usage></secret>"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "virsh", "-c", "qemu:///system", "secret-define", secretXML).CombinedOutput()
	if err != nil {
		s.t.Fatalf("virsh secret-define: %v %s", err, out)
	}
	uuid := strings.Fields(string(out))[1]
	s.t.Cleanup(func() { _ = exec.Command("virsh", "-c", "qemu:///system", "secret-undefine", uuid).Run() })
	if out, err := exec.CommandContext(ctx, "virsh", "-c", "qemu:///system", "secret-set-value", "--secret", uuid, "--base64", base64.StdEncoding.EncodeToString([]byte(secret))).CombinedOutput(); err != nil {
		s.t.Fatalf("virsh secret-set-value: %v %s", err, out)
	}
	serial := filepath.Join(dir, "serial.log")
	name := "restored-initiator-" + strconv.Itoa(os.Getpid())
	dom, err := vmspec.Build(&vmspec.Context{
		In: vmspec.Input{RestoreID: name, Tenant: "test", HostID: "partner-hypervisor", ExpireAt: time.Now().Add(time.Hour),
			VCPUs: 1, MemoryMiB: 128, Firmware: kinds.BIOS, OS: kinds.Linux, Network: kinds.NoNetwork, SerialLog: serial, VNCPassword: "partner",
			Disks: []vmspec.DiskInput{{Name: "disk0", Overlay: filepath.Join(dir, "unused.qcow2"), Chain: []vmspec.ChainElement{{Path: s.disk, Format: kinds.Raw}}}}},
		Host: vmspec.HostFacts{Accelerator: "tcg"},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	dom.Metadata, dom.Name = nil, name
	host, port, _ := net.SplitHostPort(disk["iscsi_portal"].(string))
	d := &dom.Devices.Disks[0]
	d.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"}
	d.BackingStore = nil
	d.Source = &libvirtxml.DomainDiskSource{Network: &libvirtxml.DomainDiskSourceNetwork{
		Protocol: "iscsi", Name: fmt.Sprintf("%s/%v", disk["iscsi_iqn"], disk["iscsi_lun"]),
		Hosts: []libvirtxml.DomainDiskSourceHost{{Name: host, Port: port}},
		Auth:  &libvirtxml.DomainDiskAuth{Username: user, Secret: &libvirtxml.DomainDiskSecret{Type: "iscsi", Usage: usage}},
	}}
	s.t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_ = s.drv.Destroy(cctx, name)
	})
	if err := s.drv.Start(ctx, dom); err != nil {
		s.t.Fatalf("start the initiator's domain: %v", err)
	}
	eventually(s.t, 3*time.Minute, "the serial marker of the domain booted from iSCSI", func() bool {
		b, _ := os.ReadFile(serial)
		return strings.Contains(string(b), testimage.Marker)
	})
	if err := s.drv.Destroy(ctx, name); err != nil {
		s.t.Fatal(err)
	}
}

// An iSCSI EXPORT restore: its own target with a LUN per disk, CHAP with
// a secret issued through the API (a new one retires the one before);
// libiscsi's tools see the LUN; QEMU reads exactly the recovery point from
// it; a wrong secret is refused; a libvirt domain boots from the LUN of a
// read-write export, whose writes never reach the recovery point; DELETE
// ends the target and leaves nothing.
func TestISCSIExportsServeTheRecoveryPointWithCHAP(t *testing.T) {
	s := startKVMStack(t)
	before := fileFacts(t, s.disk)
	size, _ := os.Stat(s.disk)

	ro := s.startISCSIExport("iscsi-ro", false)
	exp := ro["export"].(map[string]any)
	disk := exp["disks"].([]any)[0].(map[string]any)
	uri := disk["iscsi_uri"].(string)
	if exp["protocol"] != "EXPORT_PROTOCOL_ISCSI" || exp["chap_user"] == nil || !strings.HasPrefix(uri, "iscsi://127.0.0.1:") || exp["nbd_ca_cert"] != nil && exp["nbd_ca_cert"] != "" {
		t.Fatalf("the RUNNING iSCSI export: %v", exp)
	}
	t.Logf("RUNNING: %s; %s", ro["state_reason"], uri)
	if code, _ := s.rest("POST", "/v1/restores/"+ro["id"].(string)+"/credentials", s.globex, map[string]any{}); code != 404 {
		t.Fatalf("globex got acme's CHAP secret: HTTP %d", code)
	}
	user, secret := s.chap(ro["id"].(string))
	portal := "iscsi://" + disk["iscsi_portal"].(string)
	out, err := exec.Command("iscsi-ls", "-s", withCHAP(portal, user, secret)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Lun:1") || !strings.Contains(string(out), disk["iscsi_iqn"].(string)) {
		t.Fatalf("iscsi-ls with CHAP: %v\n%s", err, out)
	}
	t.Logf("iscsi-ls: %s", strings.TrimSpace(string(out)))
	if out, err := exec.Command("iscsi-inq", withCHAP(uri, user, secret)).CombinedOutput(); err != nil || !strings.Contains(string(out), "DIRECT_ACCESS") {
		t.Fatalf("iscsi-inq: %v\n%s", err, out)
	}
	if out, err := exec.Command("iscsi-inq", withCHAP(uri, user, "not-the-secret1")).CombinedOutput(); err == nil || !strings.Contains(string(out), "Authentication failure") {
		t.Fatalf("a wrong CHAP secret: %v\n%s", err, out)
	}
	if out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", s.disk, withCHAP(uri, user, secret)).CombinedOutput(); err != nil {
		t.Fatalf("the LUN differs from the recovery point (%d bytes): %v\n%s", size.Size(), err, out)
	}
	// A new secret retires the one before.
	_, again := s.chap(ro["id"].(string))
	if out, err := exec.Command("iscsi-inq", withCHAP(uri, user, secret)).CombinedOutput(); err == nil {
		t.Fatalf("the retired CHAP secret still logs in:\n%s", out)
	}
	if out, err := exec.Command("iscsi-inq", withCHAP(uri, user, again)).CombinedOutput(); err != nil {
		t.Fatalf("the new CHAP secret: %v\n%s", err, out)
	}

	// The partner's hypervisor boots from a read-write export.
	rw := s.startISCSIExport("iscsi-rw", true)
	rwDisk := rw["export"].(map[string]any)["disks"].([]any)[0].(map[string]any)
	rwUser, rwSecret := s.chap(rw["id"].(string))
	s.bootFromISCSI(rwDisk, rwUser, rwSecret)
	if after := fileFacts(t, s.disk); after != before {
		t.Fatalf("the recovery point changed under a read-write iSCSI export:\n%s\n%s", before, after)
	}

	// DELETE ends both: no target answers, no daemon, no file.
	for _, r := range []map[string]any{ro, rw} {
		id := r["id"].(string)
		pid, _ := os.ReadFile(filepath.Join(s.work, "restores", id, "tgtd.pid"))
		if code, body := s.rest("DELETE", "/v1/restores/"+id, s.acme, nil); code != 200 {
			t.Fatalf("delete %s: HTTP %d %v", id, code, body)
		}
		s.waitState(id, "RESTORE_STATE_DESTROYED", time.Minute, func(x map[string]any) bool { return x["export"] == nil })
		if _, err := os.Stat(filepath.Join(s.work, "restores", id)); !os.IsNotExist(err) {
			t.Fatalf("the export's work dir is left: %v", err)
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err != nil || syscall.Kill(n, 0) == nil {
			t.Fatalf("tgtd %q of restore %s still runs (%v)", pid, id, err)
		}
	}
	if out, err := exec.Command("iscsi-inq", withCHAP(uri, user, again)).CombinedOutput(); err == nil {
		t.Fatalf("a deleted export's target still answers:\n%s", out)
	}
	if after := fileFacts(t, s.disk); after != before {
		t.Fatalf("the recovery point changed:\n%s\n%s", before, after)
	}
}
