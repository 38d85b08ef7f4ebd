package cli

import (
	"fmt"
	"os"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
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
			conn, ctx, done, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer done()
			client := restorev1.NewRestoreServiceClient(conn)
			if screenshot != "" {
				resp, err := client.GetRestoreScreenshot(ctx, &restorev1.GetRestoreScreenshotRequest{Id: args[0]})
				if err != nil {
					return err
				}
				if err := os.WriteFile(screenshot, resp.Data, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "saved %s (%d bytes, %s)\n", screenshot, len(resp.Data), resp.ContentType)
				return nil
			}
			resp, err := client.CreateConsole(ctx, &restorev1.CreateConsoleRequest{Id: args[0]})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.show(resp, nil, nil)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n(opens once, until %s)\n", resp.Url, resp.ExpireTime.AsTime().Local().Format(time.TimeOnly))
			return nil
		},
	}
	c.Flags().StringVar(&screenshot, "screenshot", "", "save a live screenshot (PNG) to this file instead")
	return c
}
