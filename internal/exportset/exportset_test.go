package exportset

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/nbd"
)

type closer struct{ closed bool }

func (c *closer) Close() error { c.closed = true; return nil }

// Each disk is its own export with a secret name; the set pages its
// extents; Stop ends the socket and closes the disks' files.
func TestASetServesEachDiskUntilStopped(t *testing.T) {
	dir, err := os.MkdirTemp("", "es-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s := New(filepath.Join(dir, "nbd", "s1.sock"), nil)
	data := map[string][]byte{"a": bytes.Repeat([]byte{1}, 4096), "b": bytes.Repeat([]byte{2}, 8192)}
	c := &closer{}
	var disks []hypervisor.SnapshotDisk
	for _, name := range []string{"a", "b"} {
		b := data[name]
		d, err := s.Add(name, "src-"+name, int64(len(b)), func(_ context.Context, p []byte, off int64) error { copy(p, b[off:]); return nil }, c)
		if err != nil {
			t.Fatal(err)
		}
		disks = append(disks, d)
	}
	s.SetExtents("b", []hypervisor.Extent{{Offset: 0, Length: 4096}, {Offset: 6144, Length: 2048}})
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	if disks[0].Export == disks[1].Export || len(disks[0].Export) != 32 || disks[1].Source != "src-b" {
		t.Fatalf("%+v", disks)
	}
	for i, d := range disks {
		tg, _ := nbd.ParseURI(d.URI)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := nbd.Dial(ctx, tg.Network, tg.Address, nbd.Options{Export: tg.Export})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, conn.Size())
		if _, err := conn.ReadAt(got, 0); err != nil || !bytes.Equal(got, data[d.Name]) {
			t.Fatalf("disk %d: %v", i, err)
		}
		conn.Close()
	}
	if p, err := s.Page("s1", "b", 5000, 10); err != nil || len(p.Extents) != 1 || p.Extents[0].Offset != 6144 || p.DiskSize != 8192 {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := s.Page("s1", "c", 0, 10); err == nil {
		t.Fatal("a disk the set lacks")
	}
	if n := s.Names(); len(n) != 2 || n[0] != "a" || n[1] != "b" {
		t.Fatalf("names %v, want the order they were added in", n)
	}
	var reg Registry[*Set]
	reg.Put("s1", s)
	if p, err := reg.Page("s1", "b", 0, 1); err != nil || p.Next != 6144 || !reg.Serves("s1") {
		t.Fatalf("the registry's page: %+v %v", p, err)
	}
	if _, err := reg.Page("s2", "b", 0, 1); err == nil {
		t.Fatal("a snapshot the registry does not serve")
	}
	if got, ok := reg.Take("s1"); !ok || got != s || reg.Serves("s1") {
		t.Fatal("take")
	}
	s.Stop()
	if !c.closed {
		t.Fatal("the disks' files stay open")
	}
	if _, err := os.Stat(filepath.Join(dir, "nbd", "s1.sock")); !os.IsNotExist(err) {
		t.Fatalf("the socket stays: %v", err)
	}
}
