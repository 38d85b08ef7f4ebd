package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func verifyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "verify",
		Short: "Run verifications, read their verdicts and evidence, and set verification policies",
		Example: "  restorectl verify run --asset web-01 --app-check 'db=/bin/sh -c pg_isready'\n" +
			"  restorectl verify show --asset web-01\n" +
			"  restorectl verify policy set web-01 --every 24h",
	}
	c.AddCommand(verifyRunCmd(g), verifyListCmd(g), verifyShowCmd(g), policyCmd(g))
	return c
}

// appChecks parses --app-check NAME=PATH [ARGS...] (split on spaces; an
// argument with spaces: PATH -c 'a b' is not supported here, use the API).
func appChecks(specs []string, regex string) ([]*restorev1.AppCheck, error) {
	var out []*restorev1.AppCheck
	for _, s := range specs {
		name, cmdline, ok := strings.Cut(s, "=")
		fields := strings.Fields(cmdline)
		if !ok || name == "" || len(fields) == 0 {
			return nil, fmt.Errorf("--app-check wants NAME=PATH [ARGS...], got %q", s)
		}
		out = append(out, &restorev1.AppCheck{Name: name, Path: fields[0], Args: fields[1:], OutputRegex: regex})
	}
	return out, nil
}

func verifyOptionFlags(c *cobra.Command, marker *string, fss, apps *[]string, regex *string) {
	c.Flags().StringVar(marker, "serial-marker", "", "regex the serial console must match")
	c.Flags().StringSliceVar(fss, "filesystem", nil, "a mountpoint that must be mounted in the guest (repeatable)")
	c.Flags().StringArrayVar(apps, "app-check", nil, "NAME=PATH [ARGS...]: run inside the guest, must exit 0 (repeatable)")
	c.Flags().StringVar(regex, "app-output", "", "regex every --app-check's output must match")
}

func verifyOptions(marker string, fss, apps []string, regex string) (*restorev1.VerifyOptions, error) {
	checks, err := appChecks(apps, regex)
	if err != nil {
		return nil, err
	}
	if marker == "" && len(fss) == 0 && len(checks) == 0 {
		return nil, nil
	}
	return &restorev1.VerifyOptions{SerialMarker: marker, Filesystems: fss, AppChecks: checks}, nil
}

func verifyRunCmd(g *globals) *cobra.Command {
	var (
		req           restorev1.RunVerificationRequest
		marker, regex string
		fss, apps     []string
	)
	c := &cobra.Command{
		Use:   "run",
		Short: "Verify a recovery point now (or an asset's newest); prints the VERIFY restore",
		Long: "Boots the recovery point as a VERIFY restore: screen, guest agent, serial and application checks give one\n" +
			"verdict; the VM is torn down by itself. A recovery point verified before needs --force.",
		Example: "  restorectl verify run --asset web-01\n  restorectl verify run --recovery-point rp-42 --force --filesystem /",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := verifyOptions(marker, fss, apps, regex)
			if err != nil {
				return err
			}
			req.Verify = opts
			if req.RequestId == "" {
				req.RequestId = fmt.Sprintf("cli-verify-%d", time.Now().UnixNano())
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.RunVerificationResponse, error) {
				return restorev1.NewVerificationPolicyServiceClient(conn).RunVerification(ctx, &req)
			}, func(resp *restorev1.RunVerificationResponse) error {
				return g.show(resp, restoreHeader, func() [][]string { return restoreRows(resp.Restore) })
			})
		},
	}
	c.Flags().StringVar(&req.RecoveryPointId, "recovery-point", "", "the recovery point to verify")
	c.Flags().StringVar(&req.Asset, "asset", "", "verify this asset's newest valid recovery point")
	c.Flags().StringVar(&req.Tenant, "tenant", "", "the asset's tenant (operator and admin tokens)")
	c.Flags().StringVar(&req.RequestId, "request-id", "", "idempotency key (default: a new one)")
	c.Flags().BoolVar(&req.Force, "force", false, "verify a recovery point again")
	c.Flags().Int64Var(&req.MemoryMib, "memory-mib", 0, "memory of the VERIFY VM (default 256)")
	verifyOptionFlags(c, &marker, &fss, &apps, &regex)
	return c
}

var verificationHeader = []string{"ID", "ASSET", "RECOVERY POINT", "VERDICT", "BOOT", "FAILED CHECK", "HOST", "ENDED"}

func verificationRows(vs ...*restorev1.Verification) [][]string {
	rows := make([][]string, 0, len(vs))
	for _, v := range vs {
		rows = append(rows, []string{v.Id, v.Asset, v.RecoveryPointId, short(v.Verdict.String(), "VERDICT_"),
			bootTime(v.TimeToBootMs), orDash(v.FailedCheck), v.HostId, when(v.EndTime)})
	}
	return rows
}

func bootTime(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return (time.Duration(ms) * time.Millisecond).Round(100 * time.Millisecond).String()
}

func short(s, prefix string) string { return strings.TrimPrefix(s, prefix) }

func verifyListCmd(g *globals) *cobra.Command {
	var (
		req restorev1.ListVerificationsRequest
		w   watchFlags
	)
	c := &cobra.Command{
		Use:     "list",
		Short:   "List verifications, newest first, or --watch the verdicts come in",
		Example: "  restorectl verify list --asset web-01\n  restorectl verify list --watch",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if w.on {
				return streamWatch(g, cmd, w, verificationHeader, func(ctx context.Context, conn *grpc.ClientConn) (restorev1.VerificationService_WatchVerificationsClient, error) {
					return restorev1.NewVerificationServiceClient(conn).WatchVerifications(ctx, &restorev1.WatchVerificationsRequest{
						Asset: req.Asset, RecoveryPointId: req.RecoveryPointId, ResourceVersion: w.from})
				}, func(m *restorev1.WatchVerificationsResponse) []string { return verificationRows(m.Verification)[0] })
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListVerificationsResponse, error) {
				return restorev1.NewVerificationServiceClient(conn).ListVerifications(ctx, &req)
			}, func(resp *restorev1.ListVerificationsResponse) error {
				return g.show(resp, verificationHeader, func() [][]string { return verificationRows(resp.Verifications...) })
			})
		},
	}
	c.Flags().StringVar(&req.Asset, "asset", "", "only this asset")
	c.Flags().StringVar(&req.RecoveryPointId, "recovery-point", "", "only this recovery point")
	c.Flags().Int32Var(&req.PageSize, "page-size", 0, "at most this many (default 100)")
	w.add(c, "the verifications")
	return c
}

func verifyShowCmd(g *globals) *cobra.Command {
	var (
		asset, tenant string
		lastN         int32
	)
	c := &cobra.Command{
		Use:   "show [ID]",
		Short: "Show one verification with every check, or an asset's trend (--asset)",
		Example: "  restorectl verify show 019a7c2e-…\n" +
			"  restorectl verify show --asset web-01 --last 50",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (asset != "") {
				return fmt.Errorf("give a verification ID or --asset")
			}
			if asset != "" {
				return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetVerificationTrendResponse, error) {
					return restorev1.NewVerificationPolicyServiceClient(conn).GetVerificationTrend(ctx,
						&restorev1.GetVerificationTrendRequest{Asset: asset, Tenant: tenant, LastN: lastN})
				}, func(resp *restorev1.GetVerificationTrendResponse) error {
					t := resp.Trend
					return g.show(resp, []string{"ASSET", "RUNS", "LAST", "PASS RATE", "BOOT P50", "BOOT P95", "LAST BOOT", "SLOWER"}, func() [][]string {
						return [][]string{{t.Asset, fmt.Sprint(t.Runs), short(t.LastVerdict.String(), "VERDICT_"), fmt.Sprintf("%.0f%%", 100*t.PassRate),
							bootTime(t.TimeToBootP50Ms), bootTime(t.TimeToBootP95Ms), bootTime(t.LastTimeToBootMs), yesNo(t.Slower)}}
					})
				})
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetVerificationResponse, error) {
				return restorev1.NewVerificationServiceClient(conn).GetVerification(ctx, &restorev1.GetVerificationRequest{Id: args[0]})
			}, func(resp *restorev1.GetVerificationResponse) error {
				v := resp.Verification
				return g.show(resp, []string{"CHECK", "RESULT", "DETAIL"}, func() [][]string {
					rows := [][]string{{"verdict", short(v.Verdict.String(), "VERDICT_"), v.Reason}, {"time to boot", bootTime(v.TimeToBootMs), strings.Join(v.Signals, ", ")}}
					for _, c := range v.Checks {
						rows = append(rows, []string{c.Name, short(c.Result.String(), "CHECK_RESULT_"), c.Detail})
					}
					for _, s := range v.Screenshots {
						rows = append(rows, []string{fmt.Sprintf("screenshot %d", s.N), s.Label, fmt.Sprintf("%dx%d, GET /v1/verifications/%s/screenshots/%d", s.Width, s.Height, v.Id, s.N)})
					}
					return rows
				})
			})
		},
	}
	c.Flags().StringVar(&asset, "asset", "", "show this asset's trend: pass rate, time to boot p50/p95, slower runs")
	c.Flags().StringVar(&tenant, "tenant", "", "the asset's tenant (operator and admin tokens)")
	c.Flags().Int32Var(&lastN, "last", 0, "runs in the trend (default 20)")
	return c
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func policyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "policy",
		Short:   "Verify assets' newest recovery points on a schedule",
		Example: "  restorectl verify policy set web-01 --every 24h --max-per-host 2\n  restorectl verify policy list",
	}
	c.AddCommand(policySetCmd(g), policyListCmd(g), policyDeleteCmd(g))
	return c
}

var policyHeader = []string{"ID", "ASSET", "EVERY", "MAX PER HOST", "MEMORY", "CHECKS", "UPDATED"}

func policyRows(ps ...*restorev1.VerificationPolicy) [][]string {
	rows := make([][]string, 0, len(ps))
	for _, p := range ps {
		checks := []string{}
		if p.Verify.GetSerialMarker() != "" {
			checks = append(checks, "serial")
		}
		if len(p.Verify.GetFilesystems()) > 0 {
			checks = append(checks, "filesystems")
		}
		for _, a := range p.Verify.GetAppChecks() {
			checks = append(checks, "app:"+a.Name)
		}
		rows = append(rows, []string{p.Id, p.Asset, (time.Duration(p.IntervalSeconds) * time.Second).String(), fmt.Sprint(p.MaxPerHost),
			fmt.Sprintf("%d MiB", p.MemoryMib), orDash(strings.Join(checks, ",")), when(p.UpdateTime)})
	}
	return rows
}

func policySetCmd(g *globals) *cobra.Command {
	var (
		p             restorev1.VerificationPolicy
		every         time.Duration
		marker, regex string
		fss, apps     []string
	)
	c := &cobra.Command{
		Use:   "set ASSET|*",
		Short: "Create or replace the policy of an asset (\"*\": every asset of the tenant)",
		Example: "  restorectl verify policy set web-01 --every 24h --app-check 'web=/usr/bin/curl -fsS http://127.0.0.1/'\n" +
			"  restorectl verify policy set '*' --every 168h --tenant acme",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := verifyOptions(marker, fss, apps, regex)
			if err != nil {
				return err
			}
			p.Asset, p.IntervalSeconds, p.Verify = args[0], int64(every/time.Second), opts
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.SetVerificationPolicyResponse, error) {
				return restorev1.NewVerificationPolicyServiceClient(conn).SetVerificationPolicy(ctx, &restorev1.SetVerificationPolicyRequest{Policy: &p, Asset: p.Asset})
			}, func(resp *restorev1.SetVerificationPolicyResponse) error {
				return g.show(resp, policyHeader, func() [][]string { return policyRows(resp.Policy) })
			})
		},
	}
	c.Flags().DurationVar(&every, "every", 24*time.Hour, "verify the newest recovery point this often (at least 1m)")
	c.Flags().Int32Var(&p.MaxPerHost, "max-per-host", 1, "policy runs at once on one host")
	c.Flags().Int64Var(&p.MemoryMib, "memory-mib", 0, "memory of the VERIFY VMs (default 256)")
	c.Flags().StringVar(&p.Tenant, "tenant", "", "the tenant (operator and admin tokens)")
	verifyOptionFlags(c, &marker, &fss, &apps, &regex)
	return c
}

func policyListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List verification policies",
		Example: "  restorectl verify policy list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListVerificationPoliciesResponse, error) {
				return restorev1.NewVerificationPolicyServiceClient(conn).ListVerificationPolicies(ctx, &restorev1.ListVerificationPoliciesRequest{})
			}, func(resp *restorev1.ListVerificationPoliciesResponse) error {
				return g.show(resp, policyHeader, func() [][]string { return policyRows(resp.Policies...) })
			})
		},
	}
}

func policyDeleteCmd(g *globals) *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:     "delete ASSET|*",
		Short:   "Remove a verification policy",
		Example: "  restorectl verify policy delete web-01",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.DeleteVerificationPolicyResponse, error) {
				return restorev1.NewVerificationPolicyServiceClient(conn).DeleteVerificationPolicy(ctx,
					&restorev1.DeleteVerificationPolicyRequest{Asset: args[0], Tenant: tenant})
			}, func(*restorev1.DeleteVerificationPolicyResponse) error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "policy for %s removed\n", args[0])
				return err
			})
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "the tenant (operator and admin tokens)")
	return c
}
