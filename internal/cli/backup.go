package cli

import (
	"fmt"
	"os"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/backupjob"
	"github.com/restored/restored/internal/kinds"
	"github.com/restored/restored/internal/progressbar"
	"github.com/spf13/cobra"
)

func backupCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "backup",
		Short: "Run Restored's reference backup job (snapshot, read over NBD, write a recovery point)",
		Example: "  restorectl backup run --guest 0192f0c4-... --repository /var/lib/restored/repository\n" +
			"  restorectl backup run --guest 0192f0c4-... --incremental --repository /var/lib/restored/repository",
	}
	c.AddCommand(backupRunCmd(g))
	return c
}

func backupRunCmd(g *globals) *cobra.Command {
	cfg := backupjob.Config{}
	var within time.Duration
	c := &cobra.Command{
		Use:   "run",
		Short: "Back up a guest into a new recovery point (run it on the guest's host: the exports listen on 127.0.0.1)",
		Long: `run asks for a snapshot of the guest, reads its disks over NBD and writes a
new recovery point into --repository: a FULL as a qcow2, an INCREMENTAL (only
the extents changed since the last completed backup) as a qcow2 on top of the
previous recovery point. Then it releases the snapshot, which makes its
checkpoint the base of the next incremental. On failure the snapshot is
released without completing and nothing is left in the repository.

The agent reports the new recovery point at its next repository scan
(send it SIGHUP to scan now).`,
		Example: "  restorectl backup run --guest 0192f0c4-... --repository /var/lib/restored/repository\n" +
			"  restorectl backup run --guest 0192f0c4-... --incremental --quiesce --repository /var/lib/restored/repository",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.GuestID == "" || cfg.Repository == "" {
				return fmt.Errorf("--guest and --repository are required")
			}
			conn, ctx, done, err := g.dialFor(cmd, within)
			if err != nil {
				return err
			}
			defer done()
			cfg.Snapshots = restorev1.NewSnapshotServiceClient(conn)
			cfg.Guests = restorev1.NewGuestServiceClient(conn)
			cfg.Progress = cmd.ErrOrStderr()
			sum, err := backupjob.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSONValue(g.out, sum)
			}
			changed := fmt.Sprintf("%s changed", progressbar.Bytes(sum.BytesChanged))
			if sum.Kind == "FULL" {
				changed = fmt.Sprintf("%s allocated", progressbar.Bytes(sum.BytesChanged))
			}
			fmt.Fprintf(g.out, "recovery point %s written to %s\n", sum.RecoveryPointID, sum.Dir)
			fmt.Fprintf(g.out, "  %s, %s", sum.Kind, sum.Consistency)
			if sum.Backing != "" {
				fmt.Fprintf(g.out, ", on %s", sum.Backing)
			}
			fmt.Fprintf(g.out, "\n  read %s (%s of a %s disk) in %s", progressbar.Bytes(sum.BytesRead), changed, progressbar.Bytes(sum.DiskBytes), sum.Duration.Round(time.Millisecond))
			if sum.Consistency == "QUIESCED" {
				fmt.Fprintf(g.out, "; file systems frozen %d ms", sum.FrozenMs)
			}
			fmt.Fprintln(g.out)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.GuestID, "guest", "", "the guest's id (restorectl guest list)")
	f.BoolVar(&cfg.Incremental, "incremental", false, "read only what changed since the last completed backup (a FULL, with the reason, when that is not possible)")
	f.BoolVar(&cfg.Quiesce, "quiesce", false, "freeze the guest's file systems through its guest agent while the snapshot is taken")
	f.Int64Var(&cfg.LeaseSeconds, "lease", 3600, "seconds the snapshot may stay unreleased if this job dies (10 to 86400)")
	f.StringVar(&cfg.Repository, "repository", os.Getenv("RESTORED_REPOSITORY"), "the repository to write into (the agent's --repository; env RESTORED_REPOSITORY)")
	f.StringVar(&cfg.Asset, "asset", "", "the asset name of the recovery points (default: the guest's name)")
	f.TextVar(&cfg.Firmware, "firmware", kinds.BIOS, "how restores boot it: bios or uefi")
	f.TextVar(&cfg.OS, "os", kinds.Linux, "linux, windows or other")
	f.DurationVar(&within, "within", 0, "give up after this long (default: no limit)")
	f.Int64Var(&cfg.MaxRate, "max-rate", 0, "read at most this many bytes per second (default: no limit)")
	return c
}
