package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func restoreCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "restore",
		Aliases: []string{"restores"},
		Short:   "Create, inspect, list, delete and watch restores (recovery points booted as VMs)",
		Example: "  restorectl restore create --recovery-point rp-2026-11-25 --mode virtualize --memory-mib 512\n  restorectl restore list --state running",
	}
	c.AddCommand(restoreCreateCmd(g), restoreGetCmd(g), restoreListCmd(g), restoreDeleteCmd(g), restoreWatchCmd(g), restoreConsoleCmd(g), restoreCredentialsCmd(g), restorePromoteCmd(g))
	return c
}

func restoreRows(rs ...*restorev1.Restore) [][]string {
	rows := make([][]string, 0, len(rs))
	for _, r := range rs {
		rows = append(rows, []string{
			r.Id, r.Tenant, r.RecoveryPointId, trimEnum(r.Mode.String(), "MODE_"),
			trimEnum(r.State.String(), "RESTORE_STATE_"), orDash(r.HostId), when(r.ExpireTime), orDash(r.StateReason),
		})
	}
	return rows
}

var restoreHeader = []string{"ID", "TENANT", "RECOVERY POINT", "MODE", "STATE", "HOST", "EXPIRES", "REASON"}

func restoreCreateCmd(g *globals) *cobra.Command {
	var (
		spec      restoreSpec
		requestID string
		fromFile  string
		watch     bool
	)
	c := &cobra.Command{
		Use:   "create --recovery-point ID [flags] | --from-file SITE.yaml",
		Short: "Boot a recovery point as a VM (VIRTUALIZE keeps it; VERIFY proves it boots and destroys it), serve its disks over NBD (EXPORT), or restore a whole site at once",
		Long: `Create a restore. The request is idempotent: the same --request-id with the
same flags returns the first restore; with other flags it is refused.

--from-file creates a batch (up to 100 restores, all or none) from a YAML
file: an optional request_id and a list of items, each with the fields of
the flags (recovery_point, mode, vcpus, memory_mib, ttl, network, bridge,
firmware, read_write, protocol, format). Items that do not fit on the hosts now wait PENDING
and start as capacity frees. --watch follows the restore, or every item of
the batch, until each is RUNNING or has ended.`,
		Example: `  restorectl restore create --recovery-point rp-42 --mode virtualize --vcpus 2 --memory-mib 1024 --ttl 2h
  restorectl restore create --recovery-point rp-42 --mode verify --request-id nightly-rp-42
  restorectl restore create --recovery-point rp-42 --mode export --read-write   # then: restorectl restore credentials ID --dir ./tls
  restorectl restore create --recovery-point rp-42 --mode export --protocol iscsi  # then: restorectl restore credentials ID --dir ./chap
  restorectl restore create --from-file site.yaml --watch
    # site.yaml:
    #   request_id: site-a-failover-1
    #   items:
    #     - {recovery_point: rp-web, memory_mib: 512, network: isolated}
    #     - {recovery_point: rp-db, vcpus: 2, memory_mib: 1024}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromFile != "" {
				if changed(cmd, "recovery-point", "mode", "format", "protocol", "read-write", "vcpus", "memory-mib", "ttl", "network", "bridge", "firmware") {
					return fmt.Errorf("--from-file takes the restores' options from the file: give no other restore flags")
				}
				batch, err := readSite(fromFile, requestID)
				if err != nil {
					return err
				}
				var out *restorev1.BatchCreateRestoresResponse
				if err := unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.BatchCreateRestoresResponse, error) {
					return restorev1.NewRestoreServiceClient(conn).BatchCreateRestores(ctx, batch)
				}, func(resp *restorev1.BatchCreateRestoresResponse) error { out = resp; return nil }); err != nil {
					return err
				}
				if watch {
					return watchRestores(g, cmd, &restorev1.WatchRestoresRequest{BatchId: out.BatchId}, out.Restores, lifecycle.BootSettled)
				}
				return g.show(out, restoreHeader, func() [][]string { return restoreRows(out.Restores...) })
			}
			if spec.RecoveryPoint == "" {
				return fmt.Errorf("--recovery-point is required (or --from-file for a batch)")
			}
			req, err := spec.request()
			if err != nil {
				return err
			}
			req.RequestId = requestID
			if req.RequestId == "" {
				req.RequestId = uuid.NewString()
			}
			var x *restorev1.Restore
			if err := unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.CreateRestoreResponse, error) {
				return restorev1.NewRestoreServiceClient(conn).CreateRestore(ctx, req)
			}, func(resp *restorev1.CreateRestoreResponse) error { x = resp.Restore; return nil }); err != nil {
				return err
			}
			if watch {
				return watchRestores(g, cmd, &restorev1.WatchRestoresRequest{RecoveryPointId: x.RecoveryPointId}, []*restorev1.Restore{x}, lifecycle.BootSettled)
			}
			return g.show(x, restoreHeader, func() [][]string { return restoreRows(x) })
		},
	}
	fl := c.Flags()
	fl.StringVar(&spec.RecoveryPoint, "recovery-point", "", "recovery point id (required unless --from-file)")
	fl.StringVar(&spec.Mode, "mode", "virtualize", "virtualize, verify, export or image (image files: see also restorectl image export)")
	fl.StringVar(&spec.Format, "format", "", "image: qcow2, vmdk or vhdx")
	fl.StringVar(&spec.Protocol, "protocol", "", "export: nbd (default: NBD with TLS) or iscsi (iSCSI with CHAP)")
	fl.BoolVar(&spec.ReadWrite, "read-write", false, "export: writes through the export land in its overlay (never in the recovery point)")
	fl.Int32Var(&spec.VCPUs, "vcpus", 0, "virtual CPUs (1-64; default 1; none for export)")
	fl.Int64Var(&spec.MemoryMiB, "memory-mib", 0, "memory in MiB (96-1048576; default 256; none for export)")
	fl.DurationVar(&spec.TTL, "ttl", 0, "lease (default 4h for virtualize, 1h for verify; at most 720h)")
	fl.StringVar(&spec.Network, "network", "none", "none, isolated or bridged")
	fl.StringVar(&spec.Bridge, "bridge", "", "host bridge for --network bridged")
	fl.StringVar(&spec.Firmware, "firmware", "auto", "auto, bios or uefi")
	fl.StringVar(&requestID, "request-id", "", "idempotency key, of the restore or of the batch (default: a new random id)")
	fl.StringVar(&fromFile, "from-file", "", "create a batch of restores from this YAML file (see above)")
	fl.BoolVar(&watch, "watch", false, "follow the restore(s) until each is RUNNING or has ended")
	return c
}

// changed says whether any of the named flags was given.
func changed(cmd *cobra.Command, names ...string) bool {
	for _, name := range names {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

func restoreGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one restore",
		Example: "  restorectl restore get 019a6c2e-... --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetRestoreResponse, error) {
				return restorev1.NewRestoreServiceClient(conn).GetRestore(ctx, &restorev1.GetRestoreRequest{Id: args[0]})
			}, func(resp *restorev1.GetRestoreResponse) error {
				return g.show(resp.Restore, restoreHeader, func() [][]string { return restoreRows(resp.Restore) })
			})
		},
	}
}

func restoreListCmd(g *globals) *cobra.Command {
	var (
		req   restorev1.ListRestoresRequest
		state string
		all   bool
	)
	c := &cobra.Command{
		Use:     "list",
		Short:   "List restores, newest first",
		Example: "  restorectl restore list --state running --asset web-01\n  restorectl restore list --all --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.State, err = parseState(state); err != nil {
				return err
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListRestoresResponse, error) {
				client := restorev1.NewRestoreServiceClient(conn)
				out := &restorev1.ListRestoresResponse{}
				var err error
				out.Restores, out.NextPageToken, err = pages(all, req.PageToken, func(token string) ([]*restorev1.Restore, string, error) {
					req.PageToken = token
					resp, err := client.ListRestores(ctx, &req)
					return resp.GetRestores(), resp.GetNextPageToken(), err
				})
				return out, err
			}, func(out *restorev1.ListRestoresResponse) error {
				return g.show(out, restoreHeader, func() [][]string { return restoreRows(out.Restores...) })
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&state, "state", "", "only this state (pending, scheduled, preparing, booting, running, stopping, destroyed, failed, expired, lost)")
	fl.StringVar(&req.Asset, "asset", "", "only this asset")
	fl.StringVar(&req.RecoveryPointId, "recovery-point", "", "only this recovery point")
	fl.Int32Var(&req.PageSize, "page-size", 0, "restores per page (default 100, max 1000)")
	fl.StringVar(&req.PageToken, "page-token", "", "continue from a previous page's next_page_token")
	fl.BoolVar(&all, "all", false, "fetch every page")
	return c
}

func restoreDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Short:   "Tear a restore down (its VM and overlay are destroyed by its host)",
		Example: "  restorectl restore delete 019a6c2e-...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.DeleteRestoreResponse, error) {
				return restorev1.NewRestoreServiceClient(conn).DeleteRestore(ctx, &restorev1.DeleteRestoreRequest{Id: args[0]})
			}, func(resp *restorev1.DeleteRestoreResponse) error {
				return g.show(resp.Restore, restoreHeader, func() [][]string { return restoreRows(resp.Restore) })
			})
		},
	}
}

func restoreWatchCmd(g *globals) *cobra.Command {
	var (
		req   restorev1.WatchRestoresRequest
		state string
		until time.Duration
	)
	c := &cobra.Command{
		Use:   "watch",
		Short: "Stream restores as they change (Ctrl-C to stop)",
		Long: `Print every matching restore, then each restore again whenever it changes
(ADDED, MODIFIED, DELETED), with the resource version (rv=) to resume after:
--resource-version rv prints only what changed after it. With --output json
each event is one JSON object: {"restore": …, "type": …, "resource_version": …}.`,
		Example: "  restorectl restore watch --state running\n  restorectl restore watch --output json --for 10m",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.State, err = parseState(state); err != nil {
				return err
			}
			return printWatch(g, cmd, until, "", func(ctx context.Context, conn *grpc.ClientConn) (restorev1.RestoreService_WatchRestoresClient, error) {
				return restorev1.NewRestoreServiceClient(conn).WatchRestores(ctx, &req)
			}, func(msg *restorev1.WatchRestoresResponse) string {
				r := msg.Restore
				return fmt.Sprintf("%s  %-8s %-10s %s %s rv=%s %s", time.Now().UTC().Format(time.TimeOnly), trimEnum(msg.Type.String(), "WATCH_EVENT_TYPE_"),
					trimEnum(r.State.String(), "RESTORE_STATE_"), r.Id, orDash(r.HostId), msg.ResourceVersion, r.StateReason)
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&state, "state", "", "only this state")
	fl.DurationVar(&until, "for", 0, "stop watching after this long (default: until interrupted)")
	fl.StringVar(&req.Asset, "asset", "", "only this asset")
	fl.StringVar(&req.RecoveryPointId, "recovery-point", "", "only this recovery point")
	fl.StringVar(&req.ResourceVersion, "resource-version", "", "resume after this event (an rv= of an earlier watch)")
	return c
}

func restorePromoteCmd(g *globals) *cobra.Command {
	var (
		pool          string
		cancel, watch bool
	)
	c := &cobra.Command{
		Use:   "promote ID --storage-pool POOL [--watch] | promote ID --cancel",
		Short: "Keep a RUNNING restore as a production machine: copy its disks live to a storage pool of its host and hand the domain over (operators)",
		Long: `Promote a RUNNING VIRTUALIZE restore: its host copies each disk (overlay and
recovery point flattened) into the libvirt storage pool (type dir) while the
guest runs, then QEMU switches to the copies. PROMOTED: the domain is no longer
Restored's (no lease, never torn down); it keeps its name (rename it with
virsh domrename once it is shut off). --cancel stops a copy in progress: the
copies are removed and the restore runs on from its overlay.`,
		Example: "  restorectl restore promote 019a6c2e-... --storage-pool production --watch\n  restorectl restore promote 019a6c2e-... --cancel",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cancel == (pool != "") {
				return fmt.Errorf("give --storage-pool POOL to promote, or --cancel to stop a promotion")
			}
			var x *restorev1.Restore
			err := unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.Restore, error) {
				client := restorev1.NewRestoreServiceClient(conn)
				if cancel {
					r, err := client.CancelPromotion(ctx, &restorev1.CancelPromotionRequest{Id: args[0]})
					return r.GetRestore(), err
				}
				r, err := client.PromoteRestore(ctx, &restorev1.PromoteRestoreRequest{Id: args[0], StoragePool: pool})
				return r.GetRestore(), err
			}, func(r *restorev1.Restore) error { x = r; return nil })
			if err != nil {
				return err
			}
			if watch {
				return watchRestores(g, cmd, &restorev1.WatchRestoresRequest{RecoveryPointId: x.RecoveryPointId}, []*restorev1.Restore{x},
					func(st restorev1.RestoreState) bool { return st != lifecycle.Promoting })
			}
			return g.show(x, restoreHeader, func() [][]string { return restoreRows(x) })
		},
	}
	c.Flags().StringVar(&pool, "storage-pool", "", "the libvirt storage pool (type dir) of the restore's host the disks go to")
	c.Flags().BoolVar(&cancel, "cancel", false, "stop a promotion in progress")
	c.Flags().BoolVar(&watch, "watch", false, "follow the restore until it is PROMOTED or RUNNING again")
	return c
}
