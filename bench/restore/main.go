// Command restore is `make bench-restore`: restored and a hypervisor agent as
// processes on real libvirtd and QEMU, measured against raw libvirt in the
// same run, with interleaved runs and medians:
//
//	P1  restore request → domain running, vs qemu-img overlay + `virsh create` of the same domain XML
//	P2  restore request → domain running for a 1 TiB sparse recovery point vs a 1 GiB one
//	P3  restore request → boot verified, vs overlay + `virsh create` + waiting for the same serial marker
//
// It is a benchmark, not a test: it prints figures and ratios and never fails
// on them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/bench/internal/results"
	"github.com/restored/restored/bench/internal/stack"
	"github.com/restored/restored/bench/internal/stats"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/testimage"
	"github.com/restored/restored/internal/vmspec"
)

func main() {
	runs := flag.Int("runs", 10, "interleaved runs per comparison")
	flag.Parse()
	if err := run(*runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench-restore:", err)
		os.Exit(1)
	}
}

type bench struct {
	ctx      context.Context
	dir      string
	restores restorev1.RestoreServiceClient
	partner  context.Context
	drv      *kvm.Driver
	img      string
	seq      int
}

func run(runs int) error {
	ctx := context.Background()
	img, err := testimage.Path(".")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	st, err := stack.Start(ctx, dir, []stack.RecoveryPoint{{ID: "rp-image", From: img}, {ID: "rp-1g", Size: 1 << 30}, {ID: "rp-1t", Size: 1 << 40}})
	if err != nil {
		return err
	}
	defer st.Stop()
	b := &bench{ctx: ctx, dir: dir, restores: restorev1.NewRestoreServiceClient(st.Server.Conn()), partner: st.Partner, img: img,
		drv: kvm.NewLocal(kvm.DefaultSocket, slog.New(slog.NewTextHandler(io.Discard, nil)))}
	defer b.drv.Close()

	fmt.Printf("restore benchmark: restored + hypervisor-agent on libvirt %s, TCG, %d interleaved runs each, medians\n\n", "9.0", runs)
	var p1, p1base, p2small, p2big, p3, p3base []time.Duration
	for i := 0; i < runs; i++ {
		d, err := b.restoreUntil("rp-image", false)
		if err != nil {
			return err
		}
		p1 = append(p1, d)
		if d, err = b.raw(false); err != nil {
			return err
		}
		p1base = append(p1base, d)
		if d, err = b.restoreUntil("rp-1g", false); err != nil {
			return err
		}
		p2small = append(p2small, d)
		if d, err = b.restoreUntil("rp-1t", false); err != nil {
			return err
		}
		p2big = append(p2big, d)
		fmt.Printf("  run %2d/%d: P1 %s vs %s; P2 %s vs %s\n", i+1, runs, p1[i].Round(time.Millisecond), p1base[i].Round(time.Millisecond),
			p2big[i].Round(time.Millisecond), p2small[i].Round(time.Millisecond))
	}
	for i := 0; i < runs; i++ {
		d, err := b.restoreUntil("rp-image", true)
		if err != nil {
			return err
		}
		p3 = append(p3, d)
		if d, err = b.raw(true); err != nil {
			return err
		}
		p3base = append(p3base, d)
		fmt.Printf("  run %2d/%d: P3 %s vs %s\n", i+1, runs, p3[i].Round(time.Millisecond), p3base[i].Round(time.Millisecond))
	}
	row := func(name string, ours, base []time.Duration, what, baseline string, target float64) {
		m, mb := stats.Median(ours), stats.Median(base)
		ratio := float64(m) / float64(mb)
		fmt.Printf("%-4s %-44s %10s  vs %-48s %10s  ratio %.2fx (target <= %.2fx)\n", name, what, m.Round(time.Millisecond), baseline,
			mb.Round(time.Millisecond), ratio, target)
		results.Record(results.Row{Bench: "restore", Measure: name + " " + what, Ours: float64(m) / 1e6, Baseline: float64(mb) / 1e6, BaselineIs: baseline,
			Unit: "ms", Ratio: ratio, Target: fmt.Sprintf("<= %.2fx", target), Met: ratio <= target})
	}
	fmt.Println()
	row("P1", p1, p1base, "restore request -> domain running", "overlay + virsh create (same XML)", 1.10)
	row("P2", p2big, p2small, "restore start, 1 TiB sparse recovery point", "the same for 1 GiB", 1.05)
	row("P3", p3, p3base, "restore request -> boot verified", "overlay + virsh create + same serial marker", 1.05)
	return nil
}

// restoreUntil creates a VIRTUALIZE restore and times it until the domain
// runs (BOOTING) or, with verified, until RUNNING with a verified boot; then
// deletes it and waits until it is gone.
func (b *bench) restoreUntil(rp string, verified bool) (time.Duration, error) {
	b.seq++
	stream, err := b.restores.WatchRestores(b.partner, &restorev1.WatchRestoresRequest{RecoveryPointId: rp})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	created, err := b.restores.CreateRestore(b.partner, &restorev1.CreateRestoreRequest{
		RecoveryPointId: rp, Mode: restorev1.Mode_MODE_VIRTUALIZE, MemoryMib: 128, RequestId: fmt.Sprintf("bench-%d", b.seq),
	})
	if err != nil {
		return 0, err
	}
	id := created.Restore.Id
	var took time.Duration
	for {
		msg, err := stream.Recv()
		if err != nil {
			return 0, err
		}
		r := msg.Restore
		if r.Id != id {
			continue
		}
		if r.State == restorev1.RestoreState_RESTORE_STATE_FAILED {
			return 0, fmt.Errorf("restore %s failed: %s", id, r.StateReason)
		}
		if (!verified && (r.State == restorev1.RestoreState_RESTORE_STATE_BOOTING || r.State == restorev1.RestoreState_RESTORE_STATE_RUNNING)) ||
			(verified && r.State == restorev1.RestoreState_RESTORE_STATE_RUNNING && r.GetBoot().GetVerified()) {
			took = time.Since(start)
			break
		}
	}
	if _, err := b.restores.DeleteRestore(b.partner, &restorev1.DeleteRestoreRequest{Id: id}); err != nil {
		return 0, err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return 0, err
		}
		if msg.Restore.Id == id && msg.Restore.State == restorev1.RestoreState_RESTORE_STATE_DESTROYED {
			break
		}
	}
	return took, nil
}

var marker = regexp.MustCompile(`login:`)

// raw is the baseline: a qcow2 overlay and `virsh create` of the same domain
// XML the agent would build, optionally waiting for the same serial marker.
func (b *bench) raw(verified bool) (time.Duration, error) {
	b.seq++
	id := fmt.Sprintf("bench-raw-%d", b.seq)
	wd := filepath.Join(b.dir, id)
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(wd)
	overlay, serial := filepath.Join(wd, "disk0.qcow2"), filepath.Join(wd, "serial.log")
	dom, err := vmspec.Build(&vmspec.Context{Host: vmspec.HostFacts{Accelerator: "tcg"}, In: vmspec.Input{
		RestoreID: id, Tenant: "bench", HostID: "bench-raw", ExpireAt: time.Now().Add(time.Hour), VCPUs: 1, MemoryMiB: 128,
		Firmware: kinds.BIOS, OS: kinds.Linux, Network: kinds.NoNetwork, SerialLog: serial, VNCPassword: "pw",
		Disks: []vmspec.DiskInput{{Name: "disk0", Overlay: overlay, Chain: []vmspec.ChainElement{{Path: b.img, Format: kinds.Raw}}}},
	}})
	if err != nil {
		return 0, err
	}
	xml, _ := dom.Marshal()
	xmlPath := filepath.Join(wd, "domain.xml")
	if err := os.WriteFile(xmlPath, []byte(xml), 0o644); err != nil {
		return 0, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = b.drv.Destroy(ctx, dom.Name)
	}()
	start := time.Now()
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", b.img, "-F", "raw", overlay).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("qemu-img: %v %s", err, out)
	}
	if out, err := exec.Command("virsh", "-c", "qemu:///system", "create", xmlPath).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("virsh create: %v %s", err, out)
	}
	if !verified {
		return time.Since(start), nil
	}
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		if data, _ := os.ReadFile(serial); marker.Match(data) && strings.Contains(string(data), testimage.Marker) {
			return time.Since(start), nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return 0, fmt.Errorf("raw domain %s did not boot", id)
}
