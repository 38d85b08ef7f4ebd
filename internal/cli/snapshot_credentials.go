package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
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
		}, writeCertificates)
}

func restoreCredentialsCmd(g *globals) *cobra.Command {
	return credentialsCmd(g,
		"Write a RUNNING export's credentials: its client certificate (ca-cert.pem, client-cert.pem, client-key.pem) for an NBD export, a new CHAP secret (chap-secret) for an iSCSI one",
		"  restorectl restore credentials 0192f0d2-... --dir ./export-tls\n"+
			"  qemu-img info --image-opts driver=nbd,server.type=inet,server.host=198.51.100.7,server.port=10809,export=EXPORT,tls-creds=tls0 --object tls-creds-x509,id=tls0,dir=./export-tls,endpoint=client\n"+
			"  restorectl restore credentials 0192f0d2-... --dir ./export-chap     # iSCSI: prints the CHAP user, writes a new secret (the one before stops working)\n"+
			"  iscsi-ls -s \"iscsi://USER%$(cat ./export-chap/chap-secret)@198.51.100.7:3260\"",
		func(ctx context.Context, conn *grpc.ClientConn, id string) (*restorev1.IssueRestoreCredentialsResponse, error) {
			return restorev1.NewRestoreServiceClient(conn).IssueRestoreCredentials(ctx, &restorev1.IssueRestoreCredentialsRequest{Id: id})
		}, func(dir string, r *restorev1.IssueRestoreCredentialsResponse) (string, error) {
			if r.ChapSecret == "" {
				return writeCertificates(dir, &restorev1.IssueSnapshotCredentialsResponse{CaCert: r.CaCert, Cert: r.Cert, Key: r.Key, ExpireTime: r.ExpireTime})
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", err
			}
			path := filepath.Join(dir, credCHAP)
			if err := os.WriteFile(path, []byte(r.ChapSecret), 0o600); err != nil {
				return "", err
			}
			return fmt.Sprintf("CHAP user %s; a new secret written to %s (0600): the one before no longer logs in; valid until %s", r.ChapUser, path, when(r.ExpireTime)), nil
		})
}

// credCHAP is the file an iSCSI export's CHAP secret is written to.
const credCHAP = "chap-secret"

// writeCertificates writes NBD reader certificates into dir.
func writeCertificates(dir string, r *restorev1.IssueSnapshotCredentialsResponse) (string, error) {
	if err := WriteSnapshotCredentials(dir, r); err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %s (the host's NBD gate CA), %s and %s (0600) in %s; valid until %s", credCA, credCert, credKey, dir, when(r.ExpireTime)), nil
}

// credentialsCmd is `credentials ID --dir DIR` for one kind of reader
// credentials: issue asks for them, write writes them into the directory
// and says what it wrote.
func credentialsCmd[R proto.Message](g *globals, short, example string, issue func(context.Context, *grpc.ClientConn, string) (R, error), write func(string, R) (string, error)) *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:     "credentials ID --dir DIR",
		Short:   short,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required: the directory to write the credentials into (made 0700)")
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (R, error) {
				return issue(ctx, conn, args[0])
			}, func(resp R) error {
				said, err := write(dir, resp)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return g.printJSON(resp)
				}
				_, err = fmt.Fprintln(g.out, said)
				return err
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
