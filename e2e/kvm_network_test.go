package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/restored/restored/internal/netiso"
	"github.com/restored/restored/internal/vmspec"
	"libvirt.org/go/libvirtxml"
)

// nic is a restore domain's NIC as libvirt has it.
func (s *kvmStack) nic(id string) libvirtxml.DomainInterface {
	s.t.Helper()
	out, err := exec.Command("virsh", "-c", "qemu:///system", "dumpxml", vmspec.DomainName(id)).Output()
	if err != nil {
		s.t.Fatalf("virsh dumpxml: %v", err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(string(out)); err != nil || d.Devices == nil || len(d.Devices.Interfaces) == 0 {
		s.t.Fatalf("domain %s has no NIC: %v", id, err)
	}
	return d.Devices.Interfaces[0]
}

// linkState is the link state of a restore domain's NIC ("up" when libvirt
// names none).
func (s *kvmStack) linkState(id string) string {
	if l := s.nic(id).Link; l != nil && l.State != "" {
		return l.State
	}
	return "up"
}

func (s *kvmStack) bridgeOf(id string) string { return s.nic(id).Source.Bridge.Bridge }

// Networks on real libvirt: a lab's restores share one isolated bridge,
// removed with the last of them; a bridged restore of a machine that runs
// in production boots with its link down and comes up when asked.
func TestRestoreNetworksOnRealLibvirt(t *testing.T) {
	s := startKVMStack(t)
	ctx := context.Background()
	// An offered bridge of the test's own (no address, nothing on it).
	br := netiso.BridgeName(fmt.Sprintf("test-br-%d", os.Getpid()))
	if err := netiso.Ensure(ctx, br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netiso.Remove(context.Background(), br) })
	s.killAgent()
	s.startAgent("--bridge", br+"=acme")

	t.Run("a lab's restores share one isolated bridge, removed with the last", func(t *testing.T) {
		var ids []string
		for i := range 2 {
			ids = append(ids, s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128,
				"network": map[string]any{"kind": "ISOLATED", "lab": "erp"}, "request_id": fmt.Sprintf("lab-%d", i)}))
		}
		for _, id := range ids {
			s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
		}
		lab := s.bridgeOf(ids[0])
		if s.bridgeOf(ids[1]) != lab || lab == netiso.BridgeName(ids[0]) {
			t.Fatalf("the lab's restores are on bridges %s and %s: want one lab bridge", lab, s.bridgeOf(ids[1]))
		}
		if addrs, err := netiso.Addresses(ctx, lab); err != nil || len(addrs) != 0 {
			t.Fatalf("lab bridge %s: addresses %v (%v)", lab, addrs, err)
		}
		s.rest("DELETE", "/v1/restores/"+ids[0], s.acme, nil)
		s.waitState(ids[0], "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
		if !netiso.Exists(ctx, lab) {
			t.Fatal("the lab bridge went with the first restore; the second still runs on it")
		}
		s.rest("DELETE", "/v1/restores/"+ids[1], s.acme, nil)
		s.waitState(ids[1], "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
		if netiso.Exists(ctx, lab) {
			t.Fatalf("lab bridge %s left after its last restore", lab)
		}
	})

	t.Run("a bridged restore of a machine running in production boots with its link down", func(t *testing.T) {
		// web-01 (rp-1's asset) runs on this host: a domain of that name.
		twin := filepath.Join(t.TempDir(), "web-01.xml")
		_ = os.WriteFile(twin, []byte(`<domain type="qemu"><name>web-01</name><memory unit="MiB">32</memory><os><type arch="x86_64">hvm</type></os></domain>`), 0o644)
		if out, err := exec.Command("virsh", "-c", "qemu:///system", "define", twin).CombinedOutput(); err != nil {
			t.Fatalf("virsh define: %v %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("virsh", "-c", "qemu:///system", "undefine", "web-01").Run() })
		_ = s.agent.Process.Signal(syscall.SIGHUP) // report the host's domains now
		eventually(t, time.Minute, "web-01 in the host's domains", func() bool {
			_, d := s.rest("GET", "/v1/hosts/"+s.host+"/domains", s.admin, nil)
			for _, x := range asList(d["domains"]) {
				if x.(map[string]any)["name"] == "web-01" {
					return true
				}
			}
			return false
		})
		if code, body := s.rest("POST", "/v1/restores", s.acme, map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE",
			"network": map[string]any{"kind": "BRIDGED", "bridge": "virbr-prod"}, "request_id": "br-0"}); code != 403 {
			t.Fatalf("a bridge not offered: HTTP %d %v", code, body)
		}
		id := s.create(map[string]any{"recovery_point_id": "rp-1", "mode": "VIRTUALIZE", "memory_mib": 128,
			"network": map[string]any{"kind": "BRIDGED", "bridge": br}, "request_id": "br-1"})
		got := s.waitState(id, "RESTORE_STATE_RUNNING", 4*time.Minute, verified)
		if n := got["network"].(map[string]any); n["link_down"] != true || s.linkState(id) != "down" || s.bridgeOf(id) != br {
			t.Fatalf("the restore: network %v, link %s on %s: want it on %s with its link down", n, s.linkState(id), s.bridgeOf(id), br)
		}
		if code, _ := s.rest("POST", "/v1/restores/"+id+":link-up", s.acme, map[string]any{}); code != 200 {
			t.Fatalf("link up: HTTP %d", code)
		}
		eventually(t, time.Minute, "the link up in the domain", func() bool { return s.linkState(id) == "up" })
		s.rest("DELETE", "/v1/restores/"+id, s.acme, nil)
		s.waitState(id, "RESTORE_STATE_DESTROYED", 2*time.Minute, nil)
		s.assertGone(id)
	})
}

func asList(v any) []any { l, _ := v.([]any); return l }
