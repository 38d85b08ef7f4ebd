package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// watchFlags are the flags every list command's --watch shares.
type watchFlags struct {
	on    bool
	from  string
	until time.Duration
}

func (w *watchFlags) add(c *cobra.Command, what string) {
	fl := c.Flags()
	fl.BoolVar(&w.on, "watch", false, "stream "+what+": every one first (unless --resource-version), then each change (Ctrl-C to stop)")
	fl.StringVar(&w.from, "resource-version", "", "with --watch: resume after this event (the RV column, or resource_version in JSON)")
	fl.DurationVar(&w.until, "for", 0, "with --watch: stop after this long (default: until interrupted)")
}

// watchResponse is what every Watch* stream sends.
type watchResponse interface {
	proto.Message
	GetType() restorev1.WatchEventType
	GetResourceVersion() string
}

// receiver is a Watch* client stream.
type receiver[R watchResponse] interface {
	Recv() (R, error)
}

// streamWatch opens a watch with open and prints each event until the
// server ends it or --for runs out: as one JSON object per event, or as
// lines of TIME, EVENT, RV and the list command's columns (row).
func streamWatch[R watchResponse, S receiver[R]](g *globals, cmd *cobra.Command, w watchFlags, header []string,
	open func(context.Context, *grpc.ClientConn) (S, error), row func(R) []string) error {
	return printWatch(g, cmd, w.until, strings.Join(append([]string{"TIME", "EVENT", "RV"}, header...), "  "), open, func(msg R) string {
		cols := []string{time.Now().UTC().Format(time.TimeOnly), trimEnum(msg.GetType().String(), "WATCH_EVENT_TYPE_"), msg.GetResourceVersion()}
		if msg.GetType() != restorev1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK {
			cols = append(cols, row(msg)...)
		}
		return strings.Join(cols, "  ")
	})
}

// printWatch is the loop of every command that prints a watch: it opens
// the stream (without a deadline unless until), prints header ("" none)
// and then each message, as JSON or as the line text makes of it, until
// the server ends the stream or until runs out.
func printWatch[R watchResponse, S receiver[R]](g *globals, cmd *cobra.Command, until time.Duration, header string,
	open func(context.Context, *grpc.ClientConn) (S, error), text func(R) string) error {
	conn, ctx, done, err := g.dialFor(cmd, until)
	if err != nil {
		return err
	}
	defer done()
	stream, err := open(ctx, conn)
	if err != nil {
		return err
	}
	if g.output != "json" && header != "" {
		fmt.Fprintln(g.out, header)
	}
	for {
		msg, err := stream.Recv()
		if err == io.EOF || (until > 0 && status.Code(err) == codes.DeadlineExceeded) {
			return nil // the server ended the stream, or --for ran out
		}
		if err != nil {
			return err
		}
		if g.output == "json" {
			if err := g.printJSON(msg); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(g.out, text(msg))
	}
}
