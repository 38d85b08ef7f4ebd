package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

// Names GnuTLS (libnbd, QEMU) looks for in a certificates directory.
const (
	credCA   = "ca-cert.pem"
	credCert = "client-cert.pem"
	credKey  = "client-key.pem"
)

func snapshotCredentialsCmd(g *globals) *cobra.Command {
	return credentialsCmd(g,
		"Write a READY snapshot's client certificate for its NBD exports (ca-cert.pem, client-cert.pem, client-key.pem) for nbdinfo, qemu-img or your own job",
		"  restorectl snapshot credentials 0192f0d2-... --dir ./snap-tls\n"+
			"  nbdinfo --map 'nbds://198.51.100.7:10809/EXPORT?tls-certificates=./snap-tls'",
		func(ctx context.Context, conn *grpc.ClientConn, id string) (*restorev1.IssueSnapshotCredentialsResponse, error) {
			return restorev1.NewSnapshotServiceClient(conn).IssueSnapshotCredentials(ctx, &restorev1.IssueSnapshotCredentialsRequest{Id: id})
		})
}

func restoreCredentialsCmd(g *globals) *cobra.Command {
	return credentialsCmd(g,
		"Write a RUNNING export's client certificate (ca-cert.pem, client-cert.pem, client-key.pem) for qemu-img, nbdinfo or the partner's hypervisor",
		"  restorectl restore credentials 0192f0d2-... --dir ./export-tls\n"+
			"  qemu-img info --image-opts driver=nbd,server.type=inet,server.host=198.51.100.7,server.port=10809,export=EXPORT,tls-creds=tls0 --object tls-creds-x509,id=tls0,dir=./export-tls,endpoint=client",
		func(ctx context.Context, conn *grpc.ClientConn, id string) (*restorev1.IssueSnapshotCredentialsResponse, error) {
			r, err := restorev1.NewRestoreServiceClient(conn).IssueRestoreCredentials(ctx, &restorev1.IssueRestoreCredentialsRequest{Id: id})
			if err != nil {
				return nil, err
			}
			return &restorev1.IssueSnapshotCredentialsResponse{CaCert: r.CaCert, Cert: r.Cert, Key: r.Key, ExpireTime: r.ExpireTime}, nil
		})
}

// credentialsCmd is `credentials ID --dir DIR` for one kind of NBD reader
// certificate: issue asks for it, the command writes it as GnuTLS reads it.
func credentialsCmd(g *globals, short, example string, issue func(context.Context, *grpc.ClientConn, string) (*restorev1.IssueSnapshotCredentialsResponse, error)) *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:     "credentials ID --dir DIR",
		Short:   short,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required: the directory to write the certificate and key into (made 0700)")
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.IssueSnapshotCredentialsResponse, error) {
				return issue(ctx, conn, args[0])
			}, func(resp *restorev1.IssueSnapshotCredentialsResponse) error {
				if err := WriteSnapshotCredentials(dir, resp); err != nil {
					return err
				}
				if g.output == "json" {
					return g.printJSON(resp)
				}
				fmt.Fprintf(g.out, "wrote %s (the host's NBD gate CA), %s and %s (0600) in %s; valid until %s\n",
					credCA, credCert, credKey, dir, when(resp.ExpireTime))
				return nil
			})
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory to write the credentials into (required)")
	return c
}

// WriteSnapshotCredentials writes NBD reader credentials (a snapshot's or
// an export's) into dir as GnuTLS reads a certificates directory.
func WriteSnapshotCredentials(dir string, cr *restorev1.IssueSnapshotCredentialsResponse) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string]string{credCA: cr.CaCert, credCert: cr.Cert, credKey: cr.Key} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return err
		}
	}
	return nil
}
