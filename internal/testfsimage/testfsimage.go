// Package testfsimage builds the disk images file-level restore is tested
// on, with Debian's own tools and without mounting anything: a GPT disk
// with FAT32 and ext4 (mkfs.fat + mcopy, mkfs.ext4 -d) and an MBR disk with
// XFS and NTFS (mkfs.xfs -p, mkntfs + ntfscp), each holding a known tree.
package testfsimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// File is one file of the known tree.
type File struct {
	Path string // relative, "/"-separated
	Mode os.FileMode
	Data []byte
}

// SHA256 is the file's digest, hex.
func (f File) SHA256() string {
	s := sha256.Sum256(f.Data)
	return hex.EncodeToString(s[:])
}

// Tree is the known content: its files, and its one symbolic link.
var Tree = []File{
	{Path: "etc/hostname", Mode: 0o644, Data: []byte("restored-test\n")},
	{Path: "etc/secret", Mode: 0o600, Data: []byte("top secret\n")},
	{Path: "bin/tool", Mode: 0o755, Data: []byte("#!/bin/sh\necho restored\n")},
	{Path: "data/big.bin", Mode: 0o644, Data: pseudoRandom(3<<20 + 123)},
	{Path: "deep/a/b/c/note.txt", Mode: 0o644, Data: []byte("deep down\n")},
}

// Link is the tree's symbolic link and its target (a host path, which
// must never be what a download gives).
const Link, LinkTarget = "shadow-link", "/etc/shadow"

// NTFSFiles are the files on the NTFS volume (ntfscp writes only into
// directories that exist, and no Debian tool makes one without mounting).
var NTFSFiles = []File{
	{Path: "hostname", Mode: 0o644, Data: []byte("restored-test\n")},
	{Path: "big.bin", Mode: 0o644, Data: pseudoRandom(2<<20 + 77)},
}

func pseudoRandom(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Images are the two disks built.
type Images struct {
	// GPT: part1 FAT32, part2 ext4. MBR: part1 XFS, part2 NTFS.
	GPT, MBR string
}

const mib = 1 << 20

// Build makes both disks (raw files) in dir.
func Build(t testing.TB, dir string) Images {
	t.Helper()
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree)
	im := Images{GPT: filepath.Join(dir, "gpt.raw"), MBR: filepath.Join(dir, "mbr.raw")}

	// GPT: FAT32 at 1 MiB (40 MiB), ext4 at 41 MiB (64 MiB).
	truncate(t, im.GPT, 106*mib)
	partition(t, im.GPT, "label: gpt\nstart=2048, size=81920, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\nstart=83968, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n")
	run(t, "mkfs.fat", "-F", "32", "--offset", "2048", im.GPT, "40960")
	fat := im.GPT + "@@" + fmt.Sprint(2048*512)
	for _, d := range []string{"etc", "bin", "data", "deep", "deep/a", "deep/a/b", "deep/a/b/c"} {
		run(t, "mmd", "-i", fat, "::"+d)
	}
	for _, f := range Tree {
		run(t, "mcopy", "-i", fat, filepath.Join(tree, f.Path), "::"+f.Path)
	}
	run(t, "mkfs.ext4", "-F", "-q", "-d", tree, "-E", fmt.Sprintf("offset=%d", 83968*512), im.GPT, "65536k")

	// MBR: XFS at 1 MiB (300 MiB, its smallest), NTFS after it (64 MiB).
	truncate(t, im.MBR, 366*mib)
	partition(t, im.MBR, "label: dos\nstart=2048, size=614400, type=83\nstart=616448, size=131072, type=7\n")
	xfs := filepath.Join(dir, "xfs.raw")
	truncate(t, xfs, 300*mib)
	proto := filepath.Join(dir, "xfs.proto")
	if err := os.WriteFile(proto, []byte(xfsProto(tree)), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.xfs", "-q", "-p", proto, xfs)
	place(t, xfs, im.MBR, 2048*512)
	ntfs := filepath.Join(dir, "ntfs.raw")
	truncate(t, ntfs, 64*mib)
	run(t, "mkntfs", "-q", "-F", "-Q", "-s", "512", "-p", "616448", "-H", "16", "-S", "63", ntfs)
	for _, f := range NTFSFiles {
		src := filepath.Join(dir, "ntfs-"+f.Path)
		if err := os.WriteFile(src, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "ntfscp", "-f", ntfs, src, f.Path)
	}
	place(t, ntfs, im.MBR, 616448*512)
	return im
}

func writeTree(t testing.TB, tree string) {
	for _, f := range Tree {
		p := filepath.Join(tree, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.Mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	if err := os.Symlink(LinkTarget, filepath.Join(tree, Link)); err != nil {
		t.Fatal(err)
	}
}

// xfsProto is mkfs.xfs's proto file of the tree.
func xfsProto(tree string) string {
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	var dir func(rel string, depth int)
	dir = func(rel string, depth int) {
		ents, _ := os.ReadDir(filepath.Join(tree, rel))
		for _, e := range ents {
			p := filepath.Join(tree, rel, e.Name())
			ind := strings.Repeat(" ", depth)
			fi, _ := os.Lstat(p)
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				fmt.Fprintf(&b, "%s%s l--777 0 0 %s\n", ind, e.Name(), target)
			case fi.IsDir():
				fmt.Fprintf(&b, "%s%s d--%o 0 0\n", ind, e.Name(), fi.Mode().Perm())
				dir(filepath.Join(rel, e.Name()), depth+1)
				fmt.Fprintf(&b, "%s$\n", ind)
			default:
				fmt.Fprintf(&b, "%s%s ---%o 0 0 %s\n", ind, e.Name(), fi.Mode().Perm(), p)
			}
		}
	}
	dir("", 1)
	b.WriteString("$\n")
	return b.String()
}

func truncate(t testing.TB, p string, n int64) {
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func partition(t testing.TB, img, script string) {
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v: %s", err, out)
	}
}

// place copies a filesystem image into a disk at off, holes kept.
func place(t testing.TB, src, dst string, off int64) {
	run(t, "dd", "if="+src, "of="+dst, "bs=1M", fmt.Sprintf("seek=%d", off), "oflag=seek_bytes", "conv=notrunc,sparse", "status=none")
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed: run scripts/install-deps.sh as root (it installs what file-level restore's tests need)", name)
	}
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out.String())
	}
}
