package cli

import (
	"context"
	"fmt"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/kinds"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func guestCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "guest",
		Aliases: []string{"guests"},
		Short:   "The running guests tenants protect with hypervisor snapshots (an operator assigns a host's domain to a tenant)",
		Example: "  restorectl host domains kvm-01\n" +
			"  restorectl guest register --host kvm-01 --name web-01 --tenant acme",
	}
	c.AddCommand(guestRegisterCmd(g), guestListCmd(g), guestGetCmd(g), guestUnregisterCmd(g))
	return c
}

var guestHeader = []string{"ID", "TENANT", "HYPERVISOR", "WHERE", "NAME", "UUID", "MOREF", "STATE", "REGISTERED"}

func guestRows(gs ...*restorev1.Guest) [][]string {
	rows := make([][]string, 0, len(gs))
	for _, x := range gs {
		where := x.HostId
		if x.Vcenter != "" {
			where = x.Vcenter
		}
		rows = append(rows, []string{x.Id, x.Tenant, short(x.Hypervisor.String(), "HYPERVISOR_"), orDash(where), orDash(x.Name), orDash(x.Uuid), orDash(x.Moref),
			orDash(short(x.State.String(), "GUEST_STATE_")), when(x.CreateTime)})
	}
	return rows
}

func guestRegisterCmd(g *globals) *cobra.Command {
	var (
		req        restorev1.RegisterGuestRequest
		hypervisor kinds.Hypervisor
	)
	c := &cobra.Command{
		Use:   "register",
		Short: "Assign a domain its host reports (restorectl host domains) to a tenant (operator and admin; a domain has one owner)",
		Example: "  restorectl guest register --host kvm-01 --name web-01 --tenant acme\n" +
			"  restorectl guest register --hypervisor vmware --host vc-prod --uuid 5029c5b4-… --tenant acme   # a VM of the cluster vc-prod is",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Hypervisor = hypervisor.API()
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.RegisterGuestResponse, error) {
				return restorev1.NewGuestServiceClient(conn).RegisterGuest(ctx, &req)
			}, func(resp *restorev1.RegisterGuestResponse) error {
				return g.show(resp.Guest, guestHeader, func() [][]string { return guestRows(resp.Guest) })
			})
		},
	}
	c.Flags().TextVar(&hypervisor, "hypervisor", kinds.KVM, "kvm, vmware or hyperv")
	c.Flags().StringVar(&req.HostId, "host", "", "the host the guest runs on (VMware: the Restored host of its vCenter cluster)")
	c.Flags().StringVar(&req.Name, "name", "", "the guest's name on its host")
	c.Flags().StringVar(&req.Uuid, "uuid", "", "the guest's UUID (VMware: its instance UUID)")
	c.Flags().StringVar(&req.Vcenter, "vcenter", "", "the vCenter of a VMware guest, kept with it for people (the host says which vCenter it is)")
	c.Flags().StringVar(&req.Moref, "moref", "", "a VMware guest's managed object id (vm-42)")
	c.Flags().StringVar(&req.Tenant, "tenant", "", "the tenant (operator and admin tokens)")
	return c
}

func guestListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List guests (a partner or backup token sees only its tenant's)",
		Example: "  restorectl guest list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListGuestsResponse, error) {
				return restorev1.NewGuestServiceClient(conn).ListGuests(ctx, &restorev1.ListGuestsRequest{})
			}, func(resp *restorev1.ListGuestsResponse) error {
				return g.show(resp, guestHeader, func() [][]string { return guestRows(resp.Guests...) })
			})
		},
	}
}

func guestGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one guest",
		Example: "  restorectl guest get 019a…",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetGuestResponse, error) {
				return restorev1.NewGuestServiceClient(conn).GetGuest(ctx, &restorev1.GetGuestRequest{Id: args[0]})
			}, func(resp *restorev1.GetGuestResponse) error {
				return g.show(resp.Guest, guestHeader, func() [][]string { return guestRows(resp.Guest) })
			})
		},
	}
}

func guestUnregisterCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "unregister ID",
		Short:   "Stop protecting a guest",
		Example: "  restorectl guest unregister 019a…",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.UnregisterGuestResponse, error) {
				return restorev1.NewGuestServiceClient(conn).UnregisterGuest(ctx, &restorev1.UnregisterGuestRequest{Id: args[0]})
			}, func(*restorev1.UnregisterGuestResponse) error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "guest %s unregistered\n", args[0])
				return err
			})
		},
	}
}
