package cli

import (
	"context"
	"fmt"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func tokenCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "token",
		Aliases: []string{"tokens"},
		Short:   "Create, list, rotate and revoke bearer tokens (admin; any token may rotate itself)",
		Example: "  restorectl token create --tenant acme --role partner --ttl 2160h\n" +
			"  restorectl token rotate self --grace 24h\n" +
			"  restorectl token revoke tok-0123456789abcdef",
	}
	c.AddCommand(tokenCreateCmd(g), tokenListCmd(g), tokenRotateCmd(g), tokenRevokeCmd(g))
	return c
}

// tokenState says in a word whether a token works.
func tokenState(t *restorev1.Token, now time.Time) string {
	switch {
	case t.RevokeTime != nil:
		return "revoked"
	case t.ExpireTime != nil && !now.Before(t.ExpireTime.AsTime()):
		return "expired"
	case t.ReplacedBy != "":
		return "rotated→" + t.ReplacedBy
	}
	return "active"
}

func printSecret(g *globals, resp *restorev1.CreateTokenResponse) error {
	_, err := fmt.Fprintf(g.out, "id:      %s\ntenant:  %s\nrole:    %s\nexpires: %s\nsecret:  %s\n\nThe secret is shown only now; store it safely.\n",
		resp.Id, orDash(resp.Tenant), resp.Role, when(resp.ExpireTime), resp.Secret)
	return err
}

func tokenCreateCmd(g *globals) *cobra.Command {
	var (
		req restorev1.CreateTokenRequest
		ttl time.Duration
	)
	create := &cobra.Command{
		Use:   "create --role ROLE [--tenant T] [--ttl D]",
		Short: "Mint a token; its secret is printed once and never again",
		Long: `Mint a bearer token. Roles: admin, operator (every tenant), partner and
backup (one tenant, --tenant required), agent (hypervisor agents).
--ttl makes it expire (it is refused after that; rotate it before).`,
		Example: "  restorectl token create --tenant acme --role partner --ttl 2160h\n  restorectl token create --role operator --description \"night shift\"",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl < 0 || (ttl > 0 && ttl < time.Second) {
				return fmt.Errorf("--ttl %s: give a duration of at least 1s (or 0: never expires)", ttl)
			}
			req.TtlSeconds = int64(ttl / time.Second)
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.CreateTokenResponse, error) {
				return restorev1.NewAdminServiceClient(conn).CreateToken(ctx, &req)
			}, func(resp *restorev1.CreateTokenResponse) error {
				if g.output == "json" {
					return g.printJSON(resp)
				}
				return printSecret(g, resp)
			})
		},
	}
	fl := create.Flags()
	fl.StringVar(&req.Tenant, "tenant", "", "tenant (partner and backup tokens)")
	fl.StringVar(&req.Role, "role", "", "admin, operator, partner, backup or agent (required)")
	fl.StringVar(&req.Description, "description", "", "free text")
	fl.DurationVar(&ttl, "ttl", 0, "expire after this long (e.g. 2160h; 0: never)")
	_ = create.MarkFlagRequired("role")
	return create
}

func tokenListCmd(g *globals) *cobra.Command {
	var tenant string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List tokens (never their secrets): state, expiry, last use, rotation",
		Example: "  restorectl token list --tenant acme",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListTokensResponse, error) {
				return restorev1.NewAdminServiceClient(conn).ListTokens(ctx, &restorev1.ListTokensRequest{Tenant: tenant})
			}, func(resp *restorev1.ListTokensResponse) error {
				now := time.Now()
				return g.show(resp, []string{"ID", "TENANT", "ROLE", "STATE", "CREATED", "EXPIRES", "LAST USED", "REVOKED", "DESCRIPTION"}, func() [][]string {
					var rows [][]string
					for _, t := range resp.Tokens {
						rows = append(rows, []string{t.Id, orDash(t.Tenant), t.Role, tokenState(t, now), when(t.CreateTime), when(t.ExpireTime),
							when(t.LastUsedTime), when(t.RevokeTime), orDash(t.Description)})
					}
					return rows
				})
			})
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant's")
	return list
}

func tokenRotateCmd(g *globals) *cobra.Command {
	var grace time.Duration
	rotate := &cobra.Command{
		Use:   "rotate ID|self [--grace D]",
		Short: "Replace a token without downtime: a new secret now, the old one works for the grace period",
		Long: `Mint a token that replaces ID (same tenant, role, description and lifetime)
and print its secret once. The old token keeps working for --grace (default
1h, at most 30 days) so the client can switch over, then stops. "self" is
the token this command runs with; only admins rotate other tokens.`,
		Example: "  restorectl token rotate self --grace 24h\n  restorectl token rotate tok-0123456789abcdef",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if grace < 0 {
				return fmt.Errorf("--grace %s: give a positive duration", grace)
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.RotateTokenResponse, error) {
				return restorev1.NewAdminServiceClient(conn).RotateToken(ctx, &restorev1.RotateTokenRequest{Id: args[0], GraceSeconds: int64(grace / time.Second)})
			}, func(resp *restorev1.RotateTokenResponse) error {
				if g.output == "json" {
					return g.printJSON(resp)
				}
				if err := printSecret(g, resp.Token); err != nil {
					return err
				}
				_, err := fmt.Fprintf(g.out, "The old token %s works until %s.\n", resp.Old.GetId(), when(resp.Old.GetExpireTime()))
				return err
			})
		},
	}
	rotate.Flags().DurationVar(&grace, "grace", 0, "how long the old token keeps working (default 1h)")
	return rotate
}

func tokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a token at once (open streams using it are closed)",
		Example: "  restorectl token revoke tok-0123456789abcdef",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.RevokeTokenResponse, error) {
				return restorev1.NewAdminServiceClient(conn).RevokeToken(ctx, &restorev1.RevokeTokenRequest{Id: args[0]})
			}, func(resp *restorev1.RevokeTokenResponse) error {
				t := resp.Token
				return g.show(t, []string{"ID", "TENANT", "ROLE", "REVOKED"}, func() [][]string {
					return [][]string{{t.Id, orDash(t.Tenant), t.Role, when(t.RevokeTime)}}
				})
			})
		},
	}
}
