package backupjob

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

// snapshotTLS is how the job reaches a snapshot's exports over TLS: a
// client certificate issued for this snapshot only, and the CA the host's
// NBD gate chains to. It is nil when no export asks for TLS (nbd+unix, on
// the host itself).
func snapshotTLS(ctx context.Context, c restorev1.SnapshotServiceClient, snap *restorev1.Snapshot) (*tls.Config, error) {
	needed := false
	for _, d := range snap.Disks {
		needed = needed || strings.HasPrefix(d.NbdUri, "nbds://")
	}
	if !needed {
		return nil, nil
	}
	cr, err := c.IssueSnapshotCredentials(ctx, &restorev1.IssueSnapshotCredentialsRequest{Id: snap.Id})
	if err != nil {
		return nil, fmt.Errorf("credentials for snapshot %s: %w", snap.Id, err)
	}
	return TLSConfig(cr)
}

// TLSConfig is the client TLS of a snapshot's credentials.
func TLSConfig(cr *restorev1.IssueSnapshotCredentialsResponse) (*tls.Config, error) {
	cert, err := tls.X509KeyPair([]byte(cr.Cert), []byte(cr.Key))
	if err != nil {
		return nil, fmt.Errorf("the snapshot's credentials: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cr.CaCert)) {
		return nil, fmt.Errorf("the snapshot's credentials carry no CA certificate")
	}
	// The gate's certificate names the address the URIs dial (nbd.Dial
	// checks it).
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}
