package testfsimage

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The hostile images: whole-disk ext4 filesystems (no partition table, so
// their one volume is "disk"), each damaged one way.
const (
	// CorruptSuperblock claims a block size of 2^(10+255) bytes.
	CorruptSuperblock = "corrupt-superblock"
	// DirLoop has /deep/a/loop, a hard link to /deep: a walk of /deep
	// never ends.
	DirLoop = "dir-loop"
	// HugeDir has /etc claiming 2^40 bytes of entries (2^32 and more).
	HugeDir = "huge-dir"
	// TraversalName has a root entry named "../../etc/passwd".
	TraversalName = "traversal-name"
	// HugeXFSDir is an XFS whose /big (300 entries, extent format)
	// claims 2^31-1 extents and 2^40 bytes: a reader that believes it asks
	// for tens of GiB.
	HugeXFSDir = "huge-xfs-dir"
)

// TraversalEntry is the name TraversalName's entry has.
const TraversalEntry = "../../etc/passwd"

// Hostile builds the hostile images in dir: name → raw disk.
func Hostile(t testing.TB, dir string) map[string]string {
	t.Helper()
	tree := filepath.Join(dir, "hostile-tree")
	writeTree(t, tree)
	placeholder := filepath.Join(tree, "AAAAAAAAAAAAAAAA") // as long as TraversalEntry
	if err := os.WriteFile(placeholder, []byte("not /etc/passwd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range []string{CorruptSuperblock, DirLoop, HugeDir, TraversalName} {
		img := filepath.Join(dir, name+".raw")
		truncate(t, img, 32*mib)
		// No metadata checksums: the damage below is the only damage.
		run(t, "mkfs.ext4", "-F", "-q", "-O", "^metadata_csum", "-d", tree, img)
		out[name] = img
	}
	patch(t, out[CorruptSuperblock], 1024+24, []byte{0xff, 0, 0, 0}) // s_log_block_size
	run(t, "debugfs", "-w", "-R", "link /deep /deep/a/loop", out[DirLoop])
	run(t, "debugfs", "-w", "-R", "sif /etc size 0x10000000000", out[HugeDir])
	b, err := os.ReadFile(out[TraversalName])
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("AAAAAAAAAAAAAAAA"))
	if i < 0 {
		t.Fatal("the placeholder name is not in the image")
	}
	patch(t, out[TraversalName], int64(i), []byte(TraversalEntry))
	out[HugeXFSDir] = hugeXFSDir(t, dir)
	return out
}

func hugeXFSDir(t testing.TB, dir string) string {
	img := filepath.Join(dir, HugeXFSDir+".raw")
	var proto strings.Builder
	proto.WriteString("/dev/null\n0 0\nd--755 0 0\nbig d--755 0 0\n")
	src := filepath.Join(dir, "xfs-entry")
	if err := os.WriteFile(src, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		fmt.Fprintf(&proto, " file-with-a-long-name-%d ---644 0 0 %s\n", i, src)
	}
	proto.WriteString(" $\n$\n")
	pf := filepath.Join(dir, "huge-xfs.proto")
	if err := os.WriteFile(pf, []byte(proto.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	truncate(t, img, 300*mib)
	run(t, "mkfs.xfs", "-q", "-p", pf, img)
	out, err := exec.Command("xfs_db", "-r", "-c", "inode 128", "-c", "p u3.sfdir3.list[0].inumber.i4", img).Output()
	if err != nil {
		t.Fatalf("xfs_db: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		t.Fatalf("xfs_db: %q", out)
	}
	run(t, "xfs_db", "-x", "-c", "inode "+f[2], "-c", "write core.nextents 2147483647", "-c", "write core.size 1099511627776", img)
	return img
}

func patch(t testing.TB, path string, off int64, b []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
