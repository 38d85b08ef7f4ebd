package cli

import (
	"context"
	"fmt"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func recoveryPointCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "recovery-point",
		Aliases: []string{"recovery-points", "rp"},
		Short:   "List and inspect recovery points reported by the hosts' agents",
		Example: "  restorectl recovery-point list --asset web-01",
	}
	c.AddCommand(rpListCmd(g), rpGetCmd(g))
	return c
}

var rpHeader = []string{"ID", "TENANT", "ASSET", "CREATED", "OS", "FIRMWARE", "DISKS", "VALID", "HOSTS"}

func rpRows(ps ...*restorev1.RecoveryPoint) [][]string {
	rows := make([][]string, 0, len(ps))
	for _, p := range ps {
		valid := "yes"
		if !p.Valid {
			valid = "no: " + p.InvalidReason
		}
		rows = append(rows, []string{p.Id, p.Tenant, p.Asset, when(p.CreateTime), orDash(p.Os), orDash(p.Firmware),
			fmt.Sprint(len(p.Disks)), valid, orDash(strings.Join(p.HostIds, ","))})
	}
	return rows
}

func rpListCmd(g *globals) *cobra.Command {
	var (
		req restorev1.ListRecoveryPointsRequest
		all bool
	)
	c := &cobra.Command{
		Use:     "list",
		Short:   "List recovery points (a partner sees only its tenant's)",
		Example: "  restorectl recovery-point list --asset web-01 --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListRecoveryPointsResponse, error) {
				client := restorev1.NewRecoveryPointServiceClient(conn)
				out := &restorev1.ListRecoveryPointsResponse{}
				var err error
				out.RecoveryPoints, out.NextPageToken, err = pages(all, req.PageToken, func(token string) ([]*restorev1.RecoveryPoint, string, error) {
					req.PageToken = token
					resp, err := client.ListRecoveryPoints(ctx, &req)
					return resp.GetRecoveryPoints(), resp.GetNextPageToken(), err
				})
				return out, err
			}, func(out *restorev1.ListRecoveryPointsResponse) error {
				return g.show(out, rpHeader, func() [][]string { return rpRows(out.RecoveryPoints...) })
			})
		},
	}
	c.Flags().StringVar(&req.Asset, "asset", "", "only this asset")
	c.Flags().Int32Var(&req.PageSize, "page-size", 0, "per page (default 100)")
	c.Flags().BoolVar(&all, "all", false, "fetch every page")
	return c
}

func rpGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one recovery point with its disks",
		Example: "  restorectl recovery-point get rp-42 --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetRecoveryPointResponse, error) {
				return restorev1.NewRecoveryPointServiceClient(conn).GetRecoveryPoint(ctx, &restorev1.GetRecoveryPointRequest{Id: args[0]})
			}, func(resp *restorev1.GetRecoveryPointResponse) error {
				return g.show(resp.RecoveryPoint, rpHeader, func() [][]string { return rpRows(resp.RecoveryPoint) })
			})
		},
	}
}
