package cli

import (
	"context"
	"fmt"
	"strconv"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func snapshotCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "snapshot",
		Aliases: []string{"snapshots"},
		Short:   "See and release the hypervisor snapshots backup jobs take (restorectl backup run takes them)",
		Example: "  restorectl snapshot list --guest 0192f0c4-...\n  restorectl snapshot release 0192f0d2-...",
	}
	c.AddCommand(snapshotListCmd(g), snapshotGetCmd(g), snapshotReleaseCmd(g), snapshotCredentialsCmd(g))
	return c
}

var snapshotHeader = []string{"ID", "GUEST", "HOST", "STATE", "KIND", "CONSISTENCY", "CHECKPOINT", "LEASE UNTIL", "REASON"}

func snapshotRows(ss ...*restorev1.Snapshot) [][]string {
	rows := make([][]string, 0, len(ss))
	for _, x := range ss {
		rows = append(rows, []string{x.Id, x.GuestId, x.HostId, trimEnum(x.State.String(), "SNAPSHOT_STATE_"),
			orDash(trimEnum(x.Kind.String(), "SNAPSHOT_KIND_")), orDash(trimEnum(x.Consistency.String(), "CONSISTENCY_")),
			orDash(x.CheckpointId), when(x.LeaseExpireTime), orDash(x.StateReason)})
	}
	return rows
}

func snapshotListCmd(g *globals) *cobra.Command {
	var (
		guest string
		w     watchFlags
	)
	c := &cobra.Command{
		Use:     "list",
		Short:   "List snapshots, newest first, or --watch them change",
		Example: "  restorectl snapshot list --guest 0192f0c4-... --output json\n  restorectl snapshot list --watch",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if w.on {
				return streamWatch(g, cmd, w, snapshotHeader, func(ctx context.Context, conn *grpc.ClientConn) (restorev1.SnapshotService_WatchSnapshotsClient, error) {
					return restorev1.NewSnapshotServiceClient(conn).WatchSnapshots(ctx, &restorev1.WatchSnapshotsRequest{GuestId: guest, ResourceVersion: w.from})
				}, func(m *restorev1.WatchSnapshotsResponse) []string { return snapshotRows(m.Snapshot)[0] })
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListSnapshotsResponse, error) {
				return restorev1.NewSnapshotServiceClient(conn).ListSnapshots(ctx, &restorev1.ListSnapshotsRequest{GuestId: guest})
			}, func(resp *restorev1.ListSnapshotsResponse) error {
				return g.show(resp, snapshotHeader, func() [][]string { return snapshotRows(resp.Snapshots...) })
			})
		},
	}
	c.Flags().StringVar(&guest, "guest", "", "only this guest's")
	w.add(c, "the snapshots")
	return c
}

func snapshotGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show a snapshot with its disks and NBD exports",
		Example: "  restorectl snapshot get 0192f0d2-... --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetSnapshotResponse, error) {
				return restorev1.NewSnapshotServiceClient(conn).GetSnapshot(ctx, &restorev1.GetSnapshotRequest{Id: args[0]})
			}, func(resp *restorev1.GetSnapshotResponse) error {
				if g.output == "json" {
					return g.printJSON(resp.Snapshot)
				}
				if err := g.table(snapshotHeader, snapshotRows(resp.Snapshot)); err != nil {
					return err
				}
				fmt.Fprintln(g.out)
				rows := [][]string{}
				for _, d := range resp.Snapshot.Disks {
					rows = append(rows, []string{d.Name, strconv.FormatInt(d.Size, 10), d.NbdUri, orDash(d.DirtyBitmapContext)})
				}
				return g.table([]string{"DISK", "SIZE", "NBD", "CHANGED BLOCKS"}, rows)
			})
		},
	}
}

func snapshotReleaseCmd(g *globals) *cobra.Command {
	var completed bool
	c := &cobra.Command{
		Use:     "release ID",
		Short:   "Release a snapshot: end its export (--completed keeps its checkpoint as the next incremental's base)",
		Example: "  restorectl snapshot release 0192f0d2-...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.DeleteSnapshotResponse, error) {
				return restorev1.NewSnapshotServiceClient(conn).DeleteSnapshot(ctx, &restorev1.DeleteSnapshotRequest{Id: args[0], BackupCompleted: completed})
			}, func(resp *restorev1.DeleteSnapshotResponse) error {
				return g.show(resp.Snapshot, snapshotHeader, func() [][]string { return snapshotRows(resp.Snapshot) })
			})
		},
	}
	c.Flags().BoolVar(&completed, "completed", false, "the backup read everything: its checkpoint becomes the base of the next incremental")
	return c
}
