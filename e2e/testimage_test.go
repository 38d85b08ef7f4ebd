package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/restored/restored/internal/testimage"
)

// The test image built from Debian packages boots from its own bootloader
// under QEMU (TCG): the serial console shows the marker and a login prompt,
// and qemu-ga answers guest-ping on the virtio-serial port.
func TestTestImageBootsFromItsOwnBootloader(t *testing.T) {
	img, err := testimage.Path("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.qcow2")
	// Boot from an overlay: the image itself is never written.
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", img, "-F", "raw", disk).CombinedOutput(); err != nil {
		t.Fatalf("overlay: %v\n%s", err, out)
	}
	serial := filepath.Join(dir, "serial.log")
	qga := filepath.Join(dir, "qga.sock")
	cmd := exec.Command("qemu-system-x86_64", "-machine", "q35,accel=tcg", "-m", "128", "-display", "none", "-nodefaults",
		"-serial", "file:"+serial,
		"-drive", "file="+disk+",format=qcow2,if=virtio",
		"-device", "virtio-serial",
		"-chardev", "socket,id=qga,path="+qga+",server=on,wait=off",
		"-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	start := time.Now()
	var log []byte
	eventually(t, 120*time.Second, "the marker and a login prompt on the serial console", func() bool {
		log, _ = os.ReadFile(serial)
		return strings.Contains(string(log), testimage.Marker) && strings.Contains(string(log), testimage.LoginPrompt)
	})
	t.Logf("booted to a login prompt in %s", time.Since(start).Round(100*time.Millisecond))

	conn, err := net.DialTimeout("unix", qga, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte(`{"execute":"guest-ping"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		t.Fatalf("guest-ping: %v (serial log:\n%s)", err, log)
	}
	var resp map[string]any
	if err := json.Unmarshal(line, &resp); err != nil || resp["return"] == nil {
		t.Fatalf("guest-ping answered %q", line)
	}
}
