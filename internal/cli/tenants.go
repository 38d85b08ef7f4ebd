package cli

import (
	"context"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func tenantCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "tenant",
		Aliases: []string{"tenants"},
		Short:   "Create, list and show tenants and set their quotas (admin; a tenant's token may show its own)",
		Example: "  restorectl tenant create acme --display-name \"Acme Corp\"\n" +
			"  restorectl tenant quota acme --max-restores 10 --max-vcpus 20 --max-memory-mib 40960 --max-snapshots 5\n" +
			"  restorectl tenant get acme",
	}
	c.AddCommand(tenantCreateCmd(g), tenantListCmd(g), tenantGetCmd(g), tenantQuotaCmd(g))
	return c
}

// limit shows "used/limit", or "used" when there is none.
func limit(used, max int64) string {
	if max <= 0 {
		return fmt.Sprint(used)
	}
	return fmt.Sprintf("%d/%d", used, max)
}

var tenantColumns = []string{"ID", "NAME", "RESTORES", "VCPUS", "MEMORY MIB", "SNAPSHOTS", "CREATED"}

func tenantRow(t *restorev1.Tenant) []string {
	q, u := t.Quota, t.Usage
	return []string{t.Id, orDash(t.DisplayName),
		limit(int64(u.GetRestores()), int64(q.GetMaxRestores())), limit(int64(u.GetVcpus()), int64(q.GetMaxVcpus())),
		limit(u.GetMemoryMib(), q.GetMaxMemoryMib()), limit(int64(u.GetSnapshots()), int64(q.GetMaxSnapshots())), when(t.CreateTime)}
}

func showTenant(g *globals, t *restorev1.Tenant) error {
	return g.show(t, tenantColumns, func() [][]string { return [][]string{tenantRow(t)} })
}

func tenantCreateCmd(g *globals) *cobra.Command {
	var display string
	create := &cobra.Command{
		Use:     "create ID",
		Short:   "Create a tenant; ID is a lowercase DNS label",
		Example: "  restorectl tenant create acme --display-name \"Acme Corp\"",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.CreateTenantResponse, error) {
				return restorev1.NewAdminServiceClient(conn).CreateTenant(ctx, &restorev1.CreateTenantRequest{Id: args[0], DisplayName: display})
			}, func(resp *restorev1.CreateTenantResponse) error {
				t := resp.Tenant
				return g.show(t, []string{"ID", "NAME", "CREATED"}, func() [][]string { return [][]string{{t.Id, t.DisplayName, when(t.CreateTime)}} })
			})
		},
	}
	create.Flags().StringVar(&display, "display-name", "", "name for people")
	return create
}

func tenantListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List tenants with what each holds and its quota (used/limit)",
		Example: "  restorectl tenant list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListTenantsResponse, error) {
				return restorev1.NewAdminServiceClient(conn).ListTenants(ctx, &restorev1.ListTenantsRequest{})
			}, func(resp *restorev1.ListTenantsResponse) error {
				return g.show(resp, tenantColumns, func() [][]string {
					var rows [][]string
					for _, t := range resp.Tenants {
						rows = append(rows, tenantRow(t))
					}
					return rows
				})
			})
		},
	}
}

func tenantGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show a tenant: what it holds and its quota",
		Example: "  restorectl tenant get acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetTenantResponse, error) {
				return restorev1.NewAdminServiceClient(conn).GetTenant(ctx, &restorev1.GetTenantRequest{Id: args[0]})
			}, func(resp *restorev1.GetTenantResponse) error { return showTenant(g, resp.Tenant) })
		},
	}
}

func tenantQuotaCmd(g *globals) *cobra.Command {
	var q restorev1.TenantQuota
	quota := &cobra.Command{
		Use:   "quota ID [--max-restores N] [--max-vcpus N] [--max-memory-mib N] [--max-snapshots N]",
		Short: "Replace a tenant's quota (0 or unset: no limit); enforced on every new restore and snapshot",
		Long: `Replace a tenant's quota. Restores not yet ended (queued ones too), their
vCPUs and memory, and snapshots not yet released count toward it. A create
that would exceed it is refused (429 / RESOURCE_EXHAUSTED) naming the limit.
A lower quota ends nothing the tenant holds.`,
		Example: "  restorectl tenant quota acme --max-restores 10 --max-vcpus 20\n  restorectl tenant quota acme   # lift every limit",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.SetTenantQuotaResponse, error) {
				return restorev1.NewAdminServiceClient(conn).SetTenantQuota(ctx, &restorev1.SetTenantQuotaRequest{Id: args[0], Quota: &q})
			}, func(resp *restorev1.SetTenantQuotaResponse) error { return showTenant(g, resp.Tenant) })
		},
	}
	fl := quota.Flags()
	fl.Int32Var(&q.MaxRestores, "max-restores", 0, "restores not yet ended")
	fl.Int32Var(&q.MaxVcpus, "max-vcpus", 0, "their vCPUs, summed")
	fl.Int64Var(&q.MaxMemoryMib, "max-memory-mib", 0, "their memory, summed")
	fl.Int32Var(&q.MaxSnapshots, "max-snapshots", 0, "snapshots not yet released")
	return quota
}
