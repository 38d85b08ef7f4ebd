package cli

import (
	"context"
	"fmt"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func hostCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "host",
		Aliases: []string{"hosts"},
		Short:   "List hypervisor hosts and drain or undrain them (operator, admin)",
		Example: "  restorectl host list\n  restorectl host drain kvm-01",
	}
	c.AddCommand(hostListCmd(g), hostDrainCmd(g, true), hostDrainCmd(g, false))
	return c
}

var hostHeader = []string{"ID", "STATE", "DRAINED", "ACCEL", "VCPUS USED/TOTAL", "MEMORY MIB USED/TOTAL", "RECOVERY POINTS", "AGENT"}

func hostRows(hs ...*restorev1.Host) [][]string {
	rows := make([][]string, 0, len(hs))
	for _, h := range hs {
		rows = append(rows, []string{h.Id, strings.TrimPrefix(h.State.String(), "HOST_STATE_"), fmt.Sprint(h.Drained), orDash(h.Accelerator),
			fmt.Sprintf("%d/%d", h.GetAllocated().GetVcpus(), h.GetCapacity().GetVcpus()),
			fmt.Sprintf("%d/%d", h.GetAllocated().GetMemoryMib(), h.GetCapacity().GetMemoryMib()),
			fmt.Sprint(h.RecoveryPoints), orDash(h.AgentVersion)})
	}
	return rows
}

func hostListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List hosts with their state and capacity",
		Example: "  restorectl host list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListHostsResponse, error) {
				return restorev1.NewHostServiceClient(conn).ListHosts(ctx, &restorev1.ListHostsRequest{})
			}, func(resp *restorev1.ListHostsResponse) error {
				return g.show(resp, hostHeader, func() [][]string { return hostRows(resp.Hosts...) })
			})
		},
	}
}

func hostDrainCmd(g *globals, drain bool) *cobra.Command {
	use, short := "drain HOST", "Stop placing new restores on a host (running ones stay)"
	if !drain {
		use, short = "undrain HOST", "Let the scheduler place restores on a host again"
	}
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  restorectl host " + strings.Fields(use)[0] + " kvm-01",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.Host, error) {
				client := restorev1.NewHostServiceClient(conn)
				if drain {
					resp, err := client.DrainHost(ctx, &restorev1.DrainHostRequest{Id: args[0]})
					return resp.GetHost(), err
				}
				resp, err := client.UndrainHost(ctx, &restorev1.UndrainHostRequest{Id: args[0]})
				return resp.GetHost(), err
			}, func(h *restorev1.Host) error { return g.show(h, hostHeader, func() [][]string { return hostRows(h) }) })
		},
	}
}
