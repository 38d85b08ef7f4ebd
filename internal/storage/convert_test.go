package storage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/restored/restored/internal/kinds"
)

func TestQemuImgProgressLinesBecomeBytesOncePerPercent(t *testing.T) {
	in := "    (0.00/100%)\r    (0.50/100%)\r    (1.01/100%)\r    (50.00/100%)\rnoise\n    (100.00/100%)\n"
	var got []int64
	readProgress(strings.NewReader(in), 1000, func(done, total int64) {
		if total != 1000 {
			t.Errorf("total %d", total)
		}
		got = append(got, done)
	})
	want := []int64{0, 10, 500, 1000}
	if len(got) != len(want) {
		t.Fatalf("reports %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reports %v, want %v", got, want)
		}
	}
}

// Each format converts back to the same disk, and a chain's layers are
// all read.
func TestConvertWritesEachFormatFromAChainAndQemuImgReadsTheSameDisk(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	top := filepath.Join(dir, "top.qcow2")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	run("qemu-img", "create", "-q", "-f", "raw", base, "8M")
	run("qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", base)
	run("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", top)
	run("qemu-io", "-f", "qcow2", "-c", "write -P 0xcd 4M 1M", top)
	chain := []Layer{{Path: top, Format: kinds.QCOW2}, {Path: base, Format: kinds.Raw}}
	for _, f := range []kinds.ImageFormat{kinds.ImageQCOW2, kinds.ImageVMDK, kinds.ImageVHDX} {
		out := filepath.Join(dir, "disk."+f.Extension())
		var last int64
		err := Convert(context.Background(), ConvertSpec{Chain: chain, Out: out, Format: f, Size: 8 << 20,
			Progress: func(done, total int64) { last = done }})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if last != 8<<20 {
			t.Errorf("%s: last progress %d", f, last)
		}
		format, _ := f.QEMU()
		run("qemu-img", "compare", "-q", "-f", format, "-F", "qcow2", out, top)
		if f == kinds.ImageVMDK {
			b, _ := os.ReadFile(out)
			if !strings.Contains(string(b[:4096]), "streamOptimized") && !strings.Contains(string(b), `createType="streamOptimized"`) {
				t.Errorf("the VMDK is not streamOptimized")
			}
		}
	}
	if err := Convert(context.Background(), ConvertSpec{Chain: chain, Out: filepath.Join(dir, "x"), Format: 0}); err == nil {
		t.Error("format 0 converted")
	}
}
