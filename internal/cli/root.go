package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/restored/restored/internal/mdkeys"
	"github.com/restored/restored/internal/pki"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// globals are the flags every command shares.
type globals struct {
	addr         string
	token        string
	output       string
	timeout      time.Duration
	linearizable bool
	caCert       string
	out          io.Writer
}

// NewRoot returns the restorectl command tree.
func NewRoot(out io.Writer) *cobra.Command {
	g := &globals{out: out}
	root := &cobra.Command{
		Use:   "restorectl",
		Short: "Operate Restored: restores, recovery points, hosts, tenants, tokens and the cluster",
		Long: `restorectl talks to a restored server over gRPC.

The server address and token come from --addr/--token or the environment
variables RESTORED_ADDR and RESTORED_TOKEN.`,
		Example: `  export RESTORED_ADDR=127.0.0.1:7443
  export RESTORED_TOKEN="$(cat /var/lib/restored/bootstrap-token)"
  restorectl tenant create acme --display-name "Acme"
  restorectl restore list --output json`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	pf := root.PersistentFlags()
	pf.StringVar(&g.addr, "addr", envOr("RESTORED_ADDR", "127.0.0.1:7443"), "restored gRPC address (env RESTORED_ADDR)")
	pf.StringVar(&g.token, "token", os.Getenv("RESTORED_TOKEN"), "bearer token secret (env RESTORED_TOKEN)")
	pf.StringVar(&g.caCert, "ca-cert", envOr("RESTORED_CA_CERT", DefaultCACert), "the cluster CA's certificate, which the server's must chain to (env RESTORED_CA_CERT; a server writes it to <data-dir>/tls/ca.pem)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "deadline for each call")
	pf.BoolVar(&g.linearizable, "linearizable", false, "read through the leader instead of the server you reach")
	root.AddCommand(
		restoreCmd(g), imageCmd(g), verifyCmd(g), guestCmd(g), snapshotCmd(g), backupCmd(g), recoveryPointCmd(g), filesCmd(g), hostCmd(g), tenantCmd(g), tokenCmd(g), clusterCmd(g), auditCmd(g),
	)
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Execute runs restorectl and returns the process exit code.
func Execute(args []string, out, errOut io.Writer) int {
	root := NewRoot(out)
	root.SetErr(errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		if st, ok := status.FromError(err); ok {
			fmt.Fprintf(errOut, "restorectl: %s: %s\n", st.Code(), st.Message())
		} else {
			fmt.Fprintln(errOut, "restorectl:", err)
		}
		return 1
	}
	return 0
}

// DefaultCACert is where restorectl looks for the cluster CA: that of a
// server with the default data dir on this machine.
const DefaultCACert = "/var/lib/restored/tls/ca.pem"

// dial connects and returns a context carrying the token, with the
// --timeout deadline.
func (g *globals) dial(cmd *cobra.Command) (*grpc.ClientConn, context.Context, context.CancelFunc, error) {
	return g.dialFor(cmd, g.timeout)
}

// dialFor is dial with its own deadline; 0 means none.
func (g *globals) dialFor(cmd *cobra.Command, d time.Duration) (*grpc.ClientConn, context.Context, context.CancelFunc, error) {
	if g.output != "table" && g.output != "json" {
		return nil, nil, nil, fmt.Errorf("--output must be table or json, not %q", g.output)
	}
	if g.token == "" {
		return nil, nil, nil, fmt.Errorf("no token: pass --token or set RESTORED_TOKEN (a new server writes one to <data-dir>/bootstrap-token)")
	}
	tlsc, err := pki.DialConfig(g.caCert, g.addr, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: pass --ca-cert or set RESTORED_CA_CERT (a server writes its CA to <data-dir>/tls/ca.pem)", err)
	}
	conn, err := grpc.NewClient(g.addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsc)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", g.addr, err)
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	if d > 0 {
		ctx, cancel = context.WithTimeout(cmd.Context(), d)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.token)
	if g.linearizable {
		ctx = metadata.AppendToOutgoingContext(ctx, mdkeys.Consistency, "linearizable")
	}
	return conn, ctx, func() { cancel(); conn.Close() }, nil
}

// unary is the shape of most commands: dial, make one call, show its
// answer. do makes the call; show prints what it answered.
func unary[R proto.Message](g *globals, cmd *cobra.Command, do func(context.Context, *grpc.ClientConn) (R, error), show func(R) error) error {
	conn, ctx, done, err := g.dial(cmd)
	if err != nil {
		return err
	}
	defer done()
	resp, err := do(ctx, conn)
	if err != nil {
		return err
	}
	return show(resp)
}

// pages fetches the page at token of a list call, or with all every page
// from there on: fetch returns one page's items and the next page's token.
func pages[T any](all bool, token string, fetch func(token string) ([]T, string, error)) ([]T, string, error) {
	var items []T
	for {
		got, next, err := fetch(token)
		if err != nil {
			return nil, "", err
		}
		items = append(items, got...)
		if !all || next == "" {
			return items, next, nil
		}
		token = next
	}
}
