package stack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kvm"
)

// AwaitTornDown waits until the agent has torn every one of the restores
// down (their destroy_time set), for at most timeout.
func (s *Stack) AwaitTornDown(ids []string, timeout time.Duration) error {
	restores := restorev1.NewRestoreServiceClient(s.Server.Conn())
	deadline := time.Now().Add(timeout)
	for _, id := range ids {
		for {
			r, err := restores.GetRestore(s.Partner, &restorev1.GetRestoreRequest{Id: id})
			if err == nil && r.Restore.DestroyTime != nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("restore %s was not torn down within %s (%v)", id, timeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// LeftNothing checks that no domain of the stack's host is defined in
// libvirt and that its agent's work dir holds no restore.
func (s *Stack) LeftNothing(ctx context.Context) error {
	drv := kvm.NewLocal(kvm.DefaultSocket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer drv.Close()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	doms, err := drv.List(lctx)
	if err != nil {
		return err
	}
	for _, d := range doms {
		if d.Meta.HostID == HostID {
			return fmt.Errorf("left behind: domain %s (running: %v)", d.Name, d.Running)
		}
	}
	work := filepath.Join(s.Dir, "work", "restores")
	if entries, _ := os.ReadDir(work); len(entries) > 0 {
		return fmt.Errorf("left behind: %d restore dirs in %s", len(entries), work)
	}
	return nil
}
