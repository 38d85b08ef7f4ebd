package backupjob

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/mdkeys"
	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/progressbar"
	"github.com/restored/restored/internal/storage"
	"google.golang.org/grpc/metadata"
)

// Config is one backup run.
type Config struct {
	Snapshots restorev1.SnapshotServiceClient
	Guests    restorev1.GuestServiceClient
	GuestID   string
	// Incremental asks for only the changes since the last backup.
	Incremental bool
	Quiesce     bool
	// LeaseSeconds bounds how long the snapshot may stay unreleased.
	LeaseSeconds int64
	// Repository is the repository's root (the agent's --repository).
	Repository string
	// Asset names the recovery points (default: the guest's name).
	Asset string
	// Firmware and OS go into the manifest: restores boot the recovery
	// point that way (default BIOS, Linux).
	Firmware kinds.Firmware
	OS       kinds.OSFamily
	// Progress receives progress lines and bars (nil: none).
	Progress io.Writer
	// MaxRate caps the read rate in bytes per second (0: no cap), so that a
	// backup does not starve the guest's storage.
	MaxRate int64
}

// Summary is what a run did.
type Summary struct {
	SnapshotID        string        `json:"snapshot_id"`
	RecoveryPointID   string        `json:"recovery_point_id"`
	Dir               string        `json:"dir"`
	Kind              string        `json:"kind"`
	KindReason        string        `json:"kind_reason,omitempty"`
	Consistency       string        `json:"consistency"`
	ConsistencyReason string        `json:"consistency_reason,omitempty"`
	Backing           string        `json:"backing,omitempty"`
	BytesRead         int64         `json:"bytes_read"`
	BytesChanged      int64         `json:"bytes_changed"`
	DiskBytes         int64         `json:"disk_bytes"`
	FrozenMs          int64         `json:"frozen_ms"`
	Duration          time.Duration `json:"duration_ns"`
}

// Run takes one backup. On any failure the snapshot is released without
// completing (its checkpoint is dropped, the guest's base is unchanged)
// and nothing is left in the repository.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	start := time.Now()
	// Every call reads through the leader: the server this job reaches may
	// not have applied what the job just did (a snapshot it created, its
	// READY), and a job must read its own writes.
	ctx = linearizable(ctx)
	cfg.Firmware = cmp.Or(cfg.Firmware, kinds.BIOS)
	cfg.OS = cmp.Or(cfg.OS, kinds.Linux)
	g, err := cfg.Guests.GetGuest(ctx, &restorev1.GetGuestRequest{Id: cfg.GuestID})
	if err != nil {
		return nil, err
	}
	guest := g.Guest
	asset := cfg.Asset
	if asset == "" {
		asset = cmp.Or(guest.Name, guest.Uuid, guest.Id)
	}
	repo := &storage.Repository{Root: cfg.Repository}
	incremental := cfg.Incremental
	var base *storage.RecoveryPoint
	var note string
	if incremental && guest.BaseCheckpointId != "" {
		base, note = chooseBase(repo, guest.Tenant, asset, guest.BaseCheckpointId)
		if base == nil {
			incremental = false
			logf(cfg.Progress, "%s\n", note)
		}
	}
	created, err := cfg.Snapshots.CreateSnapshot(ctx, &restorev1.CreateSnapshotRequest{
		GuestId: guest.Id, Quiesce: cfg.Quiesce, Incremental: incremental, LeaseSeconds: cfg.LeaseSeconds, RequestId: uuid.NewString(),
	})
	if err != nil {
		return nil, err
	}
	snap := created.Snapshot
	snapID := snap.Id // snap is replaced as it is polled (nil on an error)
	logf(cfg.Progress, "snapshot %s of guest %s requested\n", snapID, guest.Id)
	completed := false
	defer func() {
		if !completed {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = cfg.Snapshots.DeleteSnapshot(rctx, &restorev1.DeleteSnapshotRequest{Id: snapID})
		}
	}()
	if snap, err = Wait(ctx, cfg.Snapshots, snap.Id, restorev1.SnapshotState_SNAPSHOT_STATE_UNSPECIFIED, restorev1.SnapshotState_SNAPSHOT_STATE_READY, cfg.Progress); err != nil {
		return nil, err
	}
	sum := &Summary{SnapshotID: snap.Id, Kind: strings.TrimPrefix(snap.Kind.String(), "SNAPSHOT_KIND_"), KindReason: cmp.Or(snap.KindReason, note),
		Consistency: strings.TrimPrefix(snap.Consistency.String(), "CONSISTENCY_"), ConsistencyReason: snap.ConsistencyReason, FrozenMs: snap.FrozenMs}
	logf(cfg.Progress, "snapshot READY: %s, %s, checkpoint %s\n", sum.Kind, sum.Consistency, snap.CheckpointId)
	if sum.KindReason != "" {
		logf(cfg.Progress, "  %s\n", sum.KindReason)
	}
	if sum.ConsistencyReason != "" {
		logf(cfg.Progress, "  %s\n", sum.ConsistencyReason)
	}
	if snap.Kind == restorev1.SnapshotKind_SNAPSHOT_KIND_INCREMENTAL {
		if base == nil || base.Manifest.Checkpoint != snap.BaseCheckpointId {
			return nil, fmt.Errorf("the snapshot is an incremental from checkpoint %s, which no recovery point here holds; run a full backup", snap.BaseCheckpointId)
		}
		sum.Backing = base.ID
	} else {
		base = nil
	}
	// This job holds the guest's only active snapshot: a .partial directory
	// of this asset is what an earlier job left when it died.
	removeStale(filepath.Join(cfg.Repository, guest.Tenant, asset), cfg.Progress)
	rpID := asset + "-" + snap.ReadyTime.AsTime().UTC().Format("20060102T150405Z") + "-" + snap.Id[len(snap.Id)-8:]
	final := filepath.Join(cfg.Repository, guest.Tenant, asset, rpID)
	staging := filepath.Join(cfg.Repository, guest.Tenant, asset, ".partial-"+rpID)
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return nil, fmt.Errorf("repository: %w", err)
	}
	defer os.RemoveAll(staging) // gone once renamed; removed on failure
	tlsc, err := snapshotTLS(ctx, cfg.Snapshots, snap)
	if err != nil {
		return nil, err
	}
	m := &storage.Manifest{ID: rpID, Tenant: guest.Tenant, Asset: asset, CreatedAt: snap.ReadyTime.AsTime().UTC(),
		Firmware: cfg.Firmware, OS: cfg.OS, Checkpoint: snap.CheckpointId}
	for _, d := range snap.Disks {
		disk, err := copyDisk(ctx, cfg, snap, d, base, staging, tlsc, sum)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		m.Disks = append(m.Disks, disk)
		sum.DiskBytes += d.Size
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(staging, storage.ManifestName), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(staging, final); err != nil {
		return nil, fmt.Errorf("publish the recovery point: %w", err)
	}
	if rp := repo.Inspect(guest.Tenant, asset, rpID); !rp.Valid {
		_ = os.RemoveAll(final)
		return nil, fmt.Errorf("the recovery point written is not valid (%s); removed it", rp.Reason)
	}
	if _, err := cfg.Snapshots.DeleteSnapshot(ctx, &restorev1.DeleteSnapshotRequest{Id: snap.Id, BackupCompleted: true}); err != nil {
		return nil, fmt.Errorf("recovery point %s is written, but releasing snapshot %s failed (its lease will): %w", rpID, snap.Id, err)
	}
	completed = true
	if err := waitReleased(ctx, cfg, snap.Id); err != nil {
		return nil, fmt.Errorf("recovery point %s is written, but %w", rpID, err)
	}
	sum.RecoveryPointID, sum.Dir, sum.Duration = rpID, final, time.Since(start)
	return sum, nil
}

// chooseBase finds the recovery point of asset an incremental from
// checkpoint goes on, or says why there is none (then the job asks for a
// FULL): no valid recovery point of that checkpoint, or a chain already as
// deep as a recovery point may sit on.
func chooseBase(repo *storage.Repository, tenant, asset, checkpoint string) (*storage.RecoveryPoint, string) {
	base := findBase(repo, tenant, asset, checkpoint)
	if base == nil {
		return nil, fmt.Sprintf("took a FULL: the repository holds no valid recovery point of checkpoint %s to put an incremental on", checkpoint)
	}
	if depth := chainDepth(repo, base); depth+1 >= storage.MaxChainDepth {
		return nil, fmt.Sprintf("took a FULL: the chain below the last recovery point is %d deep, and a recovery point may sit on at most %d", depth, storage.MaxChainDepth)
	}
	return base, ""
}

// findBase finds the valid recovery point of asset whose data matches
// checkpoint, looking only in the asset's directory.
func findBase(repo *storage.Repository, tenant, asset, checkpoint string) *storage.RecoveryPoint {
	entries, _ := os.ReadDir(filepath.Join(repo.Root, tenant, asset))
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if rp := repo.Inspect(tenant, asset, e.Name()); rp.Valid && rp.Manifest.Checkpoint == checkpoint {
			return &rp
		}
	}
	return nil
}

// chainDepth counts the recovery points below rp (0 for a full one).
func chainDepth(repo *storage.Repository, rp *storage.RecoveryPoint) int {
	if rp == nil || rp.Manifest == nil {
		return 0
	}
	depth, m := 0, rp.Manifest
	for len(m.Disks) > 0 && m.Disks[0].Backing != "" && depth <= storage.MaxChainDepth {
		b, err := os.ReadFile(filepath.Join(repo.Root, rp.Tenant, rp.Asset, m.Disks[0].Backing, storage.ManifestName))
		if err != nil {
			break
		}
		below, err := storage.ParseManifest(b)
		if err != nil {
			break
		}
		depth, m = depth+1, below
	}
	return depth
}

// Wait polls snapshot id until it is in state want, writing each state it
// moves to after from on w (nil: quietly). A snapshot that ends (RELEASED or
// FAILED) in another state is an error that gives its reason.
func Wait(ctx context.Context, c restorev1.SnapshotServiceClient, id string, from, want restorev1.SnapshotState, w io.Writer) (*restorev1.Snapshot, error) {
	ctx = linearizable(ctx)
	last := from
	for {
		got, err := c.GetSnapshot(ctx, &restorev1.GetSnapshotRequest{Id: id})
		if err != nil {
			return nil, err
		}
		s := got.Snapshot
		if s.State != last {
			logf(w, "  %s: %s\n", stateName(s.State), s.StateReason)
			last = s.State
		}
		switch s.State {
		case want:
			return s, nil
		case lifecycle.SnapFailed, lifecycle.SnapReleased:
			return nil, fmt.Errorf("snapshot %s is %s: %s", s.Id, stateName(s.State), s.StateReason)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("snapshot %s not %s: %w", id, stateName(want), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// linearizable marks ctx's calls to be read through the leader (once).
func linearizable(ctx context.Context) context.Context {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(mdkeys.Consistency)) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, mdkeys.Consistency, "linearizable")
}

func stateName(s restorev1.SnapshotState) string {
	return strings.TrimPrefix(s.String(), "SNAPSHOT_STATE_")
}

// waitReleased waits until the host confirms the release (the export is
// gone and the next snapshot of the guest may begin).
func waitReleased(ctx context.Context, cfg Config, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := Wait(ctx, cfg.Snapshots, id, restorev1.SnapshotState_SNAPSHOT_STATE_READY, restorev1.SnapshotState_SNAPSHOT_STATE_RELEASED, cfg.Progress)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the host has not confirmed the release of snapshot %s within a minute (it stays asked for)", id)
	}
	return err
}

// copyDisk writes one disk of the recovery point: the extents the
// snapshot lists, read from its export and written into a new qcow2.
func copyDisk(ctx context.Context, cfg Config, snap *restorev1.Snapshot, d *restorev1.SnapshotDisk, base *storage.RecoveryPoint, staging string, tlsc *tls.Config, sum *Summary) (storage.Disk, error) {
	out := storage.Disk{Name: d.Name, File: d.Name + ".qcow2", Format: kinds.QCOW2, VirtualSize: d.Size}
	extents, err := listExtents(ctx, cfg.Snapshots, snap.Id, d.Name)
	if err != nil {
		return out, err
	}
	var changed int64
	for _, e := range extents {
		changed += e.Length
	}
	sum.BytesChanged += changed
	backing := ""
	if base != nil {
		bd := findDisk(base.Manifest, d.Name)
		if bd == nil {
			return out, fmt.Errorf("recovery point %s has no disk %s to put the incremental on", base.ID, d.Name)
		}
		out.Backing = base.ID
		backing = filepath.Join("..", base.ID, bd.File)
	}
	path := filepath.Join(staging, out.File)
	if err := createQCOW2(ctx, path, d.Size, backing); err != nil {
		return out, err
	}
	t, err := nbd.ParseURI(d.NbdUri)
	if err != nil {
		return out, err
	}
	opts := nbd.Options{Export: t.Export}
	if t.TLS {
		opts.TLS = tlsc
	}
	src, err := nbd.Dial(ctx, t.Network, t.Address, opts)
	if err != nil {
		return out, fmt.Errorf("read the export %s: %w", d.NbdUri, err)
	}
	defer src.Close()
	dst, err := openTarget(ctx, path)
	if err != nil {
		return out, err
	}
	bar := progressbar.New(cfg.Progress, d.Name, changed, 0)
	chunk := int64(4 << 20)
	if cfg.MaxRate > 0 {
		chunk = min(chunk, max(cfg.MaxRate/8, 64<<10))
	}
	buf := make([]byte, chunk)
	started, copied := time.Now(), int64(0)
	for _, e := range extents {
		for off := e.Offset; off < e.Offset+e.Length; {
			n := min(int64(len(buf)), e.Offset+e.Length-off)
			if _, err := src.ReadAt(buf[:n], off); err != nil {
				dst.kill()
				return out, err
			}
			if _, err := dst.conn.WriteAt(buf[:n], off); err != nil {
				dst.kill()
				return out, fmt.Errorf("write the recovery point: %w", err)
			}
			off += n
			bar.Add(n)
			copied += n
			if cfg.MaxRate > 0 {
				ahead := time.Duration(float64(copied)/float64(cfg.MaxRate)*float64(time.Second)) - time.Since(started)
				if ahead > 0 {
					time.Sleep(ahead)
				}
			}
			if ctx.Err() != nil {
				dst.kill()
				return out, ctx.Err()
			}
		}
	}
	if cfg.Progress != nil {
		bar.Finish()
	}
	sum.BytesRead += src.BytesRead
	return out, dst.close()
}

func findDisk(m *storage.Manifest, name string) *storage.Disk {
	for i := range m.Disks {
		if m.Disks[i].Name == name {
			return &m.Disks[i]
		}
	}
	return nil
}

// listExtents pages through a disk's extents.
func listExtents(ctx context.Context, c restorev1.SnapshotServiceClient, id, disk string) ([]*restorev1.Extent, error) {
	var out []*restorev1.Extent
	token := ""
	for {
		page, err := c.ListSnapshotExtents(ctx, &restorev1.ListSnapshotExtentsRequest{Id: id, Disk: disk, PageSize: 10000, PageToken: token})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Extents...)
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
}

// removeStale removes the .partial-* directories in assetDir.
func removeStale(assetDir string, w io.Writer) {
	entries, _ := os.ReadDir(assetDir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".partial-") {
			logf(w, "removing %s, left by a backup job that did not finish\n", e.Name())
			_ = os.RemoveAll(filepath.Join(assetDir, e.Name()))
		}
	}
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}
