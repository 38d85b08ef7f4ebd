package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func restoreConsoleCmd(g *globals) *cobra.Command {
	var screenshot string
	c := &cobra.Command{
		Use:   "console ID",
		Short: "Print a single-use console URL (60 s) for a browser, or save a live screenshot",
		Example: "  restorectl restore console 019a6c2e-...            # open the printed URL in a browser\n" +
			"  restorectl restore console 019a6c2e-... --screenshot now.png",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if screenshot != "" {
				return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.GetRestoreScreenshotResponse, error) {
					return restorev1.NewRestoreServiceClient(conn).GetRestoreScreenshot(ctx, &restorev1.GetRestoreScreenshotRequest{Id: args[0]})
				}, func(resp *restorev1.GetRestoreScreenshotResponse) error {
					if err := os.WriteFile(screenshot, resp.Data, 0o644); err != nil {
						return err
					}
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "saved %s (%d bytes, %s)\n", screenshot, len(resp.Data), resp.ContentType)
					return err
				})
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.CreateConsoleResponse, error) {
				return restorev1.NewRestoreServiceClient(conn).CreateConsole(ctx, &restorev1.CreateConsoleRequest{Id: args[0]})
			}, func(resp *restorev1.CreateConsoleResponse) error {
				if g.output == "json" {
					return g.printJSON(resp)
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s\n(opens once, until %s)\n", resp.Url, resp.ExpireTime.AsTime().Local().Format(time.TimeOnly))
				return err
			})
		},
	}
	c.Flags().StringVar(&screenshot, "screenshot", "", "save a live screenshot (PNG) to this file instead")
	return c
}
