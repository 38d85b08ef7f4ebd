package nbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// serveBytes serves data as export "disk" on a unix socket.
func serveBytes(t *testing.T, data []byte) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Exports: map[string]Export{"disk": {Size: int64(len(data)), ReadAt: func(_ context.Context, p []byte, off int64) error {
		copy(p, data[off:])
		return nil
	}}}}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { l.Close(); s.Close() })
	return sock
}

// qemu-img (an NBD client that is not ours) reads what the server serves,
// byte for byte; so does our client.
func TestServerServesTheExportToQEMUAndToOurClient(t *testing.T) {
	data := make([]byte, 9<<20+512)
	_, _ = rand.Read(data)
	sock := serveBytes(t, data)
	out := filepath.Join(t.TempDir(), "copy.raw")
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "raw", "nbd+unix:///disk?socket="+sock, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("qemu-img read %d bytes that differ from the export's %d (%v)", len(got), len(data), err)
	}
	c := dial(t, sock, Options{Export: "disk"})
	defer c.Close()
	if c.Size() != int64(len(data)) || !c.ReadOnly() {
		t.Fatalf("size %d read-only %v", c.Size(), c.ReadOnly())
	}
	p := make([]byte, 1<<20)
	if _, err := c.ReadAt(p, 3<<20+7); err != nil || !bytes.Equal(p, data[3<<20+7:4<<20+7]) {
		t.Fatalf("read at an odd offset: %v", err)
	}
	if _, err := c.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("a write to a read-only export was taken")
	}
	if _, err := c.ReadAt(p, 0); err != nil {
		t.Fatalf("the connection after a refused write: %v", err)
	}
}

func TestServerRefusesAnUnknownExport(t *testing.T) {
	sock := serveBytes(t, make([]byte, 4096))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, "unix", sock, Options{Export: "guess"}); !errors.Is(err, ErrUnknownExport) {
		t.Fatalf("an unknown export: %v", err)
	}
	if _, err := Dial(ctx, "unix", sock, Options{Export: "disk", MetaContexts: []string{BaseAllocation}}); err == nil {
		t.Fatal("block status was offered by a server that has none")
	}
}
