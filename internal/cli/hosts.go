package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func hostCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "host",
		Aliases: []string{"hosts"},
		Short:   "List hypervisor hosts, enroll their agents, drain, undrain or remove them (operator, admin)",
		Example: "  restorectl host list\n  restorectl host join-token kvm-01\n  restorectl host drain kvm-01",
	}
	c.AddCommand(hostListCmd(g), hostJoinTokenCmd(g), hostDrainCmd(g, true), hostDrainCmd(g, false), hostRemoveCmd(g), hostDomainsCmd(g))
	return c
}

func hostJoinTokenCmd(g *globals) *cobra.Command {
	var ttl time.Duration
	c := &cobra.Command{
		Use:   "join-token HOST_ID",
		Short: "Mint a one-time token with which the agent of one host enrolls and gets its certificate",
		Long: `Mint a one-time join token for one host id. Start that host's agent once with it:

  hypervisor-agent --host-id HOST_ID --join-token <secret> --ca-fingerprint <fingerprint> ...

The agent sends the token with a certificate request, receives a certificate
naming HOST_ID, keeps it in <work-dir>/tls and renews it by itself. The token
works once, until it expires; its secret is shown only now.`,
		Example: "  restorectl host join-token kvm-01 --ttl 30m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.CreateJoinTokenResponse, error) {
				return restorev1.NewHostServiceClient(conn).CreateJoinToken(ctx, &restorev1.CreateJoinTokenRequest{HostId: args[0], TtlSeconds: int64(ttl / time.Second)})
			}, func(resp *restorev1.CreateJoinTokenResponse) error {
				if g.output == "json" {
					return g.printJSON(resp)
				}
				_, err := fmt.Fprintf(g.out, "host:           %s\njoin token:     %s\nca fingerprint: %s\nexpires:        %s\n\nStart the agent once with:\n  hypervisor-agent --host-id %s --join-token %s --ca-fingerprint %s ...\nThe token works once and is shown only now.\n",
					resp.Token.HostId, resp.Secret, resp.CaFingerprint, when(resp.Token.ExpireTime), resp.Token.HostId, resp.Secret, resp.CaFingerprint)
				return err
			})
		},
	}
	c.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token works (1m to 168h)")
	return c
}

func hostRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "remove HOST_ID",
		Short:   "Forget a host and revoke its agent's certificates at once (it must have no restores or snapshots left)",
		Example: "  restorectl host drain kvm-01 && restorectl host remove kvm-01",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.RemoveHostResponse, error) {
				return restorev1.NewHostServiceClient(conn).RemoveHost(ctx, &restorev1.RemoveHostRequest{Id: args[0]})
			}, func(*restorev1.RemoveHostResponse) error {
				_, err := fmt.Fprintf(g.out, "host %s removed; its agent's certificates are revoked\n", args[0])
				return err
			})
		},
	}
}

var hostHeader = []string{"ID", "STATE", "DRAINED", "HYPERVISOR", "ACCEL", "VCPUS USED/TOTAL", "MEMORY MIB USED/TOTAL", "OVERLAY MIB USED/TOTAL", "RECOVERY POINTS", "CAPABILITIES", "AGENT", "SERVER"}

func hostRows(hs ...*restorev1.Host) [][]string {
	rows := make([][]string, 0, len(hs))
	for _, h := range hs {
		rows = append(rows, []string{h.Id, strings.TrimPrefix(h.State.String(), "HOST_STATE_"), fmt.Sprint(h.Drained),
			orDash(strings.Join(h.Hypervisors, ",")), orDash(h.Accelerator),
			fmt.Sprintf("%d/%d", h.GetAllocated().GetVcpus(), h.GetCapacity().GetVcpus()),
			fmt.Sprintf("%d/%d", h.GetAllocated().GetMemoryMib(), h.GetCapacity().GetMemoryMib()),
			diskColumn(h),
			fmt.Sprint(h.RecoveryPoints), hypervisor.OfHost(h).String(), orDash(h.AgentVersion), orDash(h.ServerId)})
	}
	return rows
}

// diskColumn is the overlay room held and offered ("-" when the host
// reports none).
func diskColumn(h *restorev1.Host) string {
	if h.GetCapacity().GetDiskMib() == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", h.GetAllocated().GetDiskMib(), h.GetCapacity().GetDiskMib())
}

func hostListCmd(g *globals) *cobra.Command {
	var w watchFlags
	c := &cobra.Command{
		Use:     "list",
		Short:   "List hosts with their state and capacity, or --watch them change",
		Example: "  restorectl host list --output json\n  restorectl host list --watch",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if w.on {
				return streamWatch(g, cmd, w, hostHeader, func(ctx context.Context, conn *grpc.ClientConn) (restorev1.HostService_WatchHostsClient, error) {
					return restorev1.NewHostServiceClient(conn).WatchHosts(ctx, &restorev1.WatchHostsRequest{ResourceVersion: w.from})
				}, func(m *restorev1.WatchHostsResponse) []string { return hostRows(m.Host)[0] })
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListHostsResponse, error) {
				return restorev1.NewHostServiceClient(conn).ListHosts(ctx, &restorev1.ListHostsRequest{})
			}, func(resp *restorev1.ListHostsResponse) error {
				return g.show(resp, hostHeader, func() [][]string { return hostRows(resp.Hosts...) })
			})
		},
	}
	w.add(c, "the hosts")
	return c
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

func hostDomainsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "domains HOST",
		Short:   "List the domains a host's agent reports, and the guest and tenant that own each",
		Example: "  restorectl host domains kvm-01",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListHostDomainsResponse, error) {
				return restorev1.NewHostServiceClient(conn).ListHostDomains(ctx, &restorev1.ListHostDomainsRequest{Id: args[0]})
			}, func(resp *restorev1.ListHostDomainsResponse) error {
				return g.show(resp, []string{"NAME", "UUID", "MOREF", "RUNNING", "DISKS", "GUEST", "TENANT"}, func() [][]string {
					rows := make([][]string, 0, len(resp.Domains))
					for _, d := range resp.Domains {
						rows = append(rows, []string{d.Name, d.Uuid, orDash(d.Moref), fmt.Sprint(d.Running), orDash(strings.Join(d.Disks, ",")), orDash(d.GuestId), orDash(d.Tenant)})
					}
					return rows
				})
			})
		},
	}
}
