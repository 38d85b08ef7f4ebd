package cli

import (
	"context"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

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
