// Command export is `make bench-export`: what a partner gets out of a
// recovery point without booting it, against the plain tools on the same
// data, measured in one run on a recovery point of random data.
//
//   - NBD export read throughput: an EXPORT restore read whole over NBD
//     with TLS through the agent's gate (nbdcopy to null:), against
//     qemu-nbd serving the recovery point's file directly (plain NBD on a
//     unix socket), read by the same nbdcopy. Target >= 0.9x.
//   - Image download throughput: ExportImage (qcow2) and the download of
//     its file through the server, from the request to the last byte,
//     against qemu-img convert of the same disk to a local qcow2 file.
//     Target >= 0.8x.
//   - Promotion (a VIRTUALIZE restore of the test image, booted): the
//     longest read of the guest's disk while its disks are copied and
//     QEMU pivots (4 KiB direct reads in a loop inside the guest; target
//     <= 100 ms), and the copy's throughput from the request to PROMOTED
//     against qemu-img convert of the same chain to a local qcow2.
//   - File-level restore: listing /etc of a recovery point through the
//     API (first and warm), against virt-ls (libguestfs, whose appliance
//     boots each time) on the same disk; on the test image and on a 1 TiB
//     sparse disk holding it (the time should not grow with the size).
//     Target >= 10x.
//
// It is a benchmark, not a test: it prints figures and ratios and never
// fails on them. It ends by checking it left nothing behind.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/bench/internal/results"
	"github.com/restored/restored/bench/internal/stack"
	"github.com/restored/restored/internal/cli"
	"github.com/restored/restored/internal/kvm"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/testimage"
)

func main() {
	size := flag.Int64("size-mib", 512, "the recovery point's size in MiB (random data)")
	filesOnly := flag.Bool("files-only", false, "only the file-level restore part")
	flag.Parse()
	if err := run(*size<<20, *filesOnly); err != nil {
		fmt.Fprintln(os.Stderr, "bench-export:", err)
		os.Exit(1)
	}
}

func run(size int64, filesOnly bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	src := filepath.Join(dir, "random.raw")
	if err := randomFile(src, size); err != nil {
		return err
	}
	img, err := testimage.Path(".")
	if err != nil {
		return err
	}
	big, err := bigSparse(img, dir)
	if err != nil {
		return err
	}
	st, err := stack.Start(ctx, dir, []stack.RecoveryPoint{{ID: "rp-random", From: src}, {ID: "rp-image", From: img}, {ID: "rp-1tib", From: big}})
	if err != nil {
		return err
	}
	defer st.Stop()
	if err := os.Remove(big); err != nil {
		return err
	}
	if filesOnly {
		if err := fileListing(st, dir); err != nil {
			return err
		}
		st.Stop()
		return leftNothing(st, dir)
	}
	disk := filepath.Join(dir, "repo", "bench", "a", "rp-random", "disk0.raw")
	restores := restorev1.NewRestoreServiceClient(st.Server.Conn())
	fmt.Printf("recovery point: %d MiB of random data\n\n", size>>20)

	// NBD: ours, then qemu-nbd on the file itself.
	ours, err := readExport(st, restores, dir)
	if err != nil {
		return err
	}
	base, err := readQemuNBD(ctx, disk, dir)
	if err != nil {
		return err
	}
	fmt.Printf("%-52s %8.1f MiB/s\n", "NBD+TLS export through the gate (nbdcopy)", mibps(size, ours))
	fmt.Printf("%-52s %8.1f MiB/s\n", "qemu-nbd serving the file (nbdcopy, plain NBD)", mibps(size, base))
	fmt.Printf("%-52s %8.2fx   (target >= 0.9x)\n\n", "ratio", base.Seconds()/ours.Seconds())
	results.Record(results.Row{Bench: "export", Measure: "NBD+TLS export read through the gate", Ours: mibps(size, ours), Baseline: mibps(size, base),
		BaselineIs: "qemu-nbd on the file", Unit: "MiB/s", Ratio: base.Seconds() / ours.Seconds(), Target: ">= 0.90x", Met: base.Seconds()/ours.Seconds() >= 0.9})

	// Image download: ours end to end, then a local qemu-img convert.
	image, fileBytes, err := downloadImage(st, restores, dir)
	if err != nil {
		return err
	}
	start := time.Now()
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk, filepath.Join(dir, "local.qcow2")).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img convert: %v %s", err, out)
	}
	local := time.Since(start)
	fmt.Printf("%-52s %8.1f MiB/s  (%.2f s, %d MiB file)\n", "export-image qcow2 + download through the server", mibps(size, image), image.Seconds(), fileBytes>>20)
	fmt.Printf("%-52s %8.1f MiB/s  (%.2f s)\n", "qemu-img convert to a local qcow2", mibps(size, local), local.Seconds())
	fmt.Printf("%-52s %8.2fx   (target >= 0.8x)\n\n", "ratio", local.Seconds()/image.Seconds())
	results.Record(results.Row{Bench: "export", Measure: "image export qcow2 + download", Ours: mibps(size, image), Baseline: mibps(size, local),
		BaselineIs: "local qemu-img convert", Unit: "MiB/s", Ratio: local.Seconds() / image.Seconds(), Target: ">= 0.80x", Met: local.Seconds()/image.Seconds() >= 0.8})

	if err := promotion(ctx, st, restores, dir); err != nil {
		return err
	}
	if err := fileListing(st, dir); err != nil {
		return err
	}
	// File restore keeps a recovery point's disks served for a minute
	// after its last listing; they end with the agent.
	st.Stop()
	return leftNothing(st, dir)
}

func mibps(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

// randomFile writes size random bytes.
func randomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(f, rand.Reader, size)
	return err
}

// waitRunning follows a restore until it is RUNNING.
func waitRunning(st *stack.Stack, restores restorev1.RestoreServiceClient, id string) (*restorev1.Restore, error) {
	return waitState(st, restores, id, restorev1.RestoreState_RESTORE_STATE_RUNNING, restorev1.RestoreState_RESTORE_STATE_PENDING,
		restorev1.RestoreState_RESTORE_STATE_SCHEDULED, restorev1.RestoreState_RESTORE_STATE_PREPARING, restorev1.RestoreState_RESTORE_STATE_BOOTING)
}

// waitState follows a restore (every 20 ms, for at most 5 minutes) until
// it is in state want; any state but want and those it goes through on
// the way is an error with its reason.
func waitState(st *stack.Stack, restores restorev1.RestoreServiceClient, id string, want restorev1.RestoreState, through ...restorev1.RestoreState) (*restorev1.Restore, error) {
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		g, err := restores.GetRestore(st.Partner, &restorev1.GetRestoreRequest{Id: id})
		if err != nil {
			return nil, err
		}
		switch x := g.Restore; {
		case x.State == want:
			return x, nil
		case !slices.Contains(through, x.State):
			return nil, fmt.Errorf("restore %s is %s, not %s: %s", id, x.State, want, x.StateReason)
		}
	}
	return nil, fmt.Errorf("restore %s was not %s within 5 minutes", id, want)
}

// remove deletes a restore and waits until its host tore it down.
func remove(st *stack.Stack, restores restorev1.RestoreServiceClient, id string) error {
	if _, err := restores.DeleteRestore(st.Partner, &restorev1.DeleteRestoreRequest{Id: id}); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		g, err := restores.GetRestore(st.Partner, &restorev1.GetRestoreRequest{Id: id})
		if err == nil && g.Restore.DestroyTime != nil {
			return nil
		}
	}
	return fmt.Errorf("restore %s was not torn down", id)
}

// readExport reads an EXPORT restore of the recovery point whole.
func readExport(st *stack.Stack, restores restorev1.RestoreServiceClient, dir string) (time.Duration, error) {
	c, err := restores.CreateRestore(st.Partner, &restorev1.CreateRestoreRequest{RecoveryPointId: "rp-random", Mode: restorev1.Mode_MODE_EXPORT, RequestId: "bench-export-nbd"})
	if err != nil {
		return 0, err
	}
	x, err := waitRunning(st, restores, c.Restore.Id)
	if err != nil {
		return 0, err
	}
	defer remove(st, restores, x.Id)
	cr, err := restores.IssueRestoreCredentials(st.Partner, &restorev1.IssueRestoreCredentialsRequest{Id: x.Id})
	if err != nil {
		return 0, err
	}
	tls := filepath.Join(dir, "export-tls")
	if err := cli.WriteSnapshotCredentials(tls, &restorev1.IssueSnapshotCredentialsResponse{CaCert: cr.CaCert, Cert: cr.Cert, Key: cr.Key}); err != nil {
		return 0, err
	}
	uri := x.Export.Disks[0].NbdUri + "?tls-certificates=" + tls
	return timed("nbdcopy", uri, "null:")
}

// readQemuNBD serves the file with qemu-nbd (read-only, unix socket) and
// reads it whole with the same client.
func readQemuNBD(ctx context.Context, disk, dir string) (time.Duration, error) {
	sock := filepath.Join(dir, "qemu-nbd.sock")
	cmd := exec.CommandContext(ctx, "qemu-nbd", "--read-only", "--persistent", "-f", "raw", "-k", sock, disk)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return timed("nbdcopy", "nbd+unix:///?socket="+sock, "null:")
}

func timed(prog string, args ...string) (time.Duration, error) {
	start := time.Now()
	if out, err := exec.Command(prog, args...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s %s: %v %s", prog, strings.Join(args, " "), err, out)
	}
	return time.Since(start), nil
}

// downloadImage converts the recovery point to qcow2 and downloads the
// file through the server, timed from the request to the last byte.
func downloadImage(st *stack.Stack, restores restorev1.RestoreServiceClient, dir string) (time.Duration, int64, error) {
	start := time.Now()
	c, err := restores.ExportImage(st.Partner, &restorev1.ExportImageRequest{RecoveryPointId: "rp-random", Format: restorev1.ImageFormat_IMAGE_FORMAT_QCOW2, RequestId: "bench-export-image"})
	if err != nil {
		return 0, 0, err
	}
	x, err := waitRunning(st, restores, c.Restore.Id)
	if err != nil {
		return 0, 0, err
	}
	defer remove(st, restores, x.Id)
	converted := time.Since(start)
	link, err := restores.CreateDownload(st.Partner, &restorev1.CreateDownloadRequest{Id: x.Id})
	if err != nil {
		return 0, 0, err
	}
	tlsc, err := pki.DialConfig(st.CACert, st.Server.HTTP, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tlsc}}).Get(link.Url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(dir, "downloaded.qcow2"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	n, err := io.Copy(f, resp.Body)
	if err != nil || n != link.SizeBytes {
		return 0, 0, fmt.Errorf("download: %d of %d bytes: %v", n, link.SizeBytes, err)
	}
	total := time.Since(start)
	fmt.Printf("%-52s %8.2f s conversion + %.2f s download\n", "  of which", converted.Seconds(), (total - converted).Seconds())
	return total, n, nil
}

// leftNothing checks that no restore dir, export daemon or tgtd of this
// run is left.
func leftNothing(st *stack.Stack, dir string) error {
	if err := st.LeftNothing(context.Background()); err != nil {
		return err
	}
	daemons := func() []int {
		out, _ := exec.Command("pgrep", "-f", "qemu-storage-daemon.*"+dir).Output()
		var live []int
		for _, p := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(p); err == nil && syscall.Kill(pid, 0) == nil {
				live = append(live, pid)
			}
		}
		return live
	}
	for i := 0; i < 50 && len(daemons()) > 0; i++ {
		time.Sleep(100 * time.Millisecond) // a daemon ending with its agent
	}
	if live := daemons(); len(live) > 0 {
		return fmt.Errorf("left behind: qemu-storage-daemon %v", live)
	}
	fmt.Println("left nothing behind: no domain, no restore dir, no export daemon")
	return nil
}

// promotion promotes a booted restore of the test image into a pool of
// its own while the guest reads its disk, and compares the copy with a
// local qemu-img convert of the same chain.
func promotion(ctx context.Context, st *stack.Stack, restores restorev1.RestoreServiceClient, dir string) error {
	pool, poolDir := "bench-export-pool", filepath.Join(dir, "pool")
	if err := os.MkdirAll(poolDir, 0o755); err != nil {
		return err
	}
	virsh := func(args ...string) error {
		out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("virsh %v: %v %s", args, err, out)
		}
		return nil
	}
	if err := virsh("pool-define-as", pool, "dir", "--target", poolDir); err != nil {
		return err
	}
	defer func() { _ = virsh("pool-destroy", pool); _ = virsh("pool-undefine", pool) }()
	if err := virsh("pool-start", pool); err != nil {
		return err
	}
	c, err := restores.CreateRestore(st.Partner, &restorev1.CreateRestoreRequest{RecoveryPointId: "rp-image", Mode: restorev1.Mode_MODE_VIRTUALIZE, MemoryMib: 256, RequestId: "bench-export-promote"})
	if err != nil {
		return err
	}
	x, err := waitRunning(st, restores, c.Restore.Id)
	if err != nil {
		return err
	}
	name := "restored-" + x.Id
	drv := kvm.NewLocal(kvm.DefaultSocket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer drv.Close()
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_ = drv.Destroy(cctx, name)
	}()
	// The guest times 4 KiB direct reads of its disk for 20 s and prints
	// the longest, in microseconds.
	probe := `end=$(( $(date +%s) + 20 )); max=0; n=0; while [ $(date +%s) -lt $end ]; do ` +
		`s=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/vda of=/dev/null bs=4k count=1 skip=$(( n % 4096 )) iflag=direct 2>/dev/null; ` +
		`e=$(cut -d' ' -f1 /proc/uptime); d=$(echo "$s $e" | awk '{printf "%d", ($2-$1)*1000000}'); [ $d -gt $max ] && max=$d; n=$((n+1)); done; echo $max $n`
	type probed struct {
		out string
		err error
	}
	res := make(chan probed, 1)
	go func() {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		r, err := drv.GuestExec(pctx, name, "/bin/sh", "-c", probe)
		res <- probed{strings.TrimSpace(string(r.Stdout)), err}
	}()
	time.Sleep(3 * time.Second) // the probe's quiet baseline first
	start := time.Now()
	if _, err := restores.PromoteRestore(st.Admin, &restorev1.PromoteRestoreRequest{Id: x.Id, StoragePool: pool}); err != nil {
		return err
	}
	if _, err := waitState(st, restores, x.Id, restorev1.RestoreState_RESTORE_STATE_PROMOTED, restorev1.RestoreState_RESTORE_STATE_PROMOTING); err != nil {
		return err
	}
	took := time.Since(start)
	p := <-res
	disk := filepath.Join(dir, "repo", "bench", "a", "rp-image", "disk0.raw")
	size, err := os.Stat(disk)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk, filepath.Join(dir, "promote-local.qcow2")).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img convert: %v %s", err, out)
	}
	local := time.Since(t0)
	fmt.Printf("%-52s %8.1f MiB/s  (%.2f s, %d MiB disk)\n", "promotion: request -> PROMOTED", mibps(size.Size(), took), took.Seconds(), size.Size()>>20)
	fmt.Printf("%-52s %8.1f MiB/s  (%.2f s)\n", "qemu-img convert of the same disk to a local qcow2", mibps(size.Size(), local), local.Seconds())
	fmt.Printf("%-52s %8.2fx\n", "ratio", local.Seconds()/took.Seconds())
	var maxUS, reads int
	if _, err := fmt.Sscan(p.out, &maxUS, &reads); p.err != nil || err != nil {
		fmt.Printf("%-52s not measured (%v %v %q)\n\n", "guest's longest disk read across the pivot", p.err, err, p.out)
		return nil
	}
	fmt.Printf("%-52s %8d ms  over %d reads in 20 s (target <= 100 ms)\n\n", "guest's longest disk read across the copy and pivot", maxUS/1000, reads)
	results.Record(results.Row{Bench: "export", Measure: "promotion: guest's longest disk read across the pivot", Ours: float64(maxUS) / 1000, Baseline: 100,
		BaselineIs: "the target", Unit: "ms", Ratio: float64(maxUS) / 1000 / 100, Target: "<= 100 ms", Met: maxUS <= 100_000})
	return nil
}
