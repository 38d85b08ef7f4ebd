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
		Short:   "Create and list tenants (admin)",
		Example: "  restorectl tenant create acme --display-name \"Acme Corp\"",
	}
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
	list := &cobra.Command{
		Use:     "list",
		Short:   "List tenants",
		Example: "  restorectl tenant list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListTenantsResponse, error) {
				return restorev1.NewAdminServiceClient(conn).ListTenants(ctx, &restorev1.ListTenantsRequest{})
			}, func(resp *restorev1.ListTenantsResponse) error {
				return g.show(resp, []string{"ID", "NAME", "CREATED"}, func() [][]string {
					var rows [][]string
					for _, t := range resp.Tenants {
						rows = append(rows, []string{t.Id, t.DisplayName, when(t.CreateTime)})
					}
					return rows
				})
			})
		},
	}
	c.AddCommand(create, list)
	return c
}

func clusterCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "cluster",
		Short:   "Show the control plane's raft cluster (admin)",
		Example: "  restorectl cluster status",
	}
	c.AddCommand(&cobra.Command{
		Use:     "status",
		Short:   "Show servers, the leader and the commit index",
		Example: "  restorectl cluster status --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetClusterResponse, error) {
				return restorev1.NewAdminServiceClient(conn).GetCluster(ctx, &restorev1.GetClusterRequest{})
			}, func(resp *restorev1.GetClusterResponse) error {
				if g.output == "json" {
					return g.printJSON(resp)
				}
				fmt.Fprintf(g.out, "leader: %s   commit index: %d   answered by: %s (applied %d)\nCA: %s\n\n",
					orDash(resp.LeaderId), resp.CommitIndex, resp.ServerId, resp.AppliedIndex, orDash(resp.CaFingerprint))
				var rows [][]string
				for _, s := range resp.Servers {
					role := "follower"
					if s.Leader {
						role = "leader"
					}
					rows = append(rows, []string{s.Id, role, s.Suffrage, s.RaftAddress, orDash(s.GrpcAddress)})
				}
				return g.table([]string{"ID", "ROLE", "SUFFRAGE", "RAFT", "GRPC"}, rows)
			})
		},
	})
	return c
}
