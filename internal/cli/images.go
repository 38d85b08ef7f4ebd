package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/progressbar"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func imageCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "image",
		Aliases: []string{"images"},
		Short:   "Convert a recovery point to qcow2, VMDK or VHDX files and download them",
		Example: "  restorectl image export --recovery-point rp-42 --format vmdk --wait\n  restorectl image download 019a6c2e-... --file web-01.vmdk",
	}
	c.AddCommand(imageExportCmd(g), imageDownloadCmd(g))
	return c
}

func imageExportCmd(g *globals) *cobra.Command {
	var (
		req    restorev1.ExportImageRequest
		format string
		ttl    time.Duration
		wait   bool
	)
	c := &cobra.Command{
		Use:   "export --recovery-point ID --format qcow2|vmdk|vhdx",
		Short: "Convert a recovery point's disks to image files on the host that holds it (an IMAGE restore)",
		Long: `Convert each disk of a recovery point to an image file: qcow2 (KVM,
Proxmox, OpenStack), vmdk (streamOptimized, for VMware) or vhdx (dynamic,
for Hyper-V). The files are kept until the restore is deleted or its TTL
(default 1h) ends. With --wait a progress bar follows the conversion; then
'restorectl image download ID' fetches each file.`,
		Example: "  restorectl image export --recovery-point rp-42 --format vmdk --wait --ttl 4h",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseEnum("format", restorev1.ImageFormat(0).Descriptor(), "IMAGE_FORMAT_", format)
			if err != nil {
				return err
			}
			req.Format = restorev1.ImageFormat(f)
			req.TtlSeconds = int64(ttl / time.Second)
			if req.RequestId == "" {
				req.RequestId = uuid.NewString()
			}
			var x *restorev1.Restore
			if err := unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ExportImageResponse, error) {
				return restorev1.NewRestoreServiceClient(conn).ExportImage(ctx, &req)
			}, func(resp *restorev1.ExportImageResponse) error {
				x = resp.Restore
				return nil
			}); err != nil {
				return err
			}
			if wait {
				if x, err = waitForFiles(g, cmd, x); err != nil {
					return err
				}
			}
			return g.show(x, imageHeader, func() [][]string { return imageRows(x) })
		},
	}
	fl := c.Flags()
	fl.StringVar(&req.RecoveryPointId, "recovery-point", "", "recovery point id (required)")
	fl.StringVar(&format, "format", "", "qcow2, vmdk or vhdx (required)")
	fl.DurationVar(&ttl, "ttl", 0, "how long the files are kept (default 1h; at most 720h)")
	fl.BoolVar(&wait, "wait", false, "follow the conversion with a progress bar until the files are ready")
	fl.StringVar(&req.RequestId, "request-id", "", "idempotency key (default: a new random id)")
	_ = c.MarkFlagRequired("recovery-point")
	_ = c.MarkFlagRequired("format")
	return c
}

var imageHeader = []string{"ID", "STATE", "HOST", "DISK", "FILE", "BYTES", "EXPIRES", "REASON"}

func imageRows(x *restorev1.Restore) [][]string {
	state := trimEnum(x.State.String(), "RESTORE_STATE_")
	if len(x.GetImage().GetFiles()) == 0 {
		return [][]string{{x.Id, state, orDash(x.HostId), "-", "-", "-", when(x.ExpireTime), orDash(x.StateReason)}}
	}
	var rows [][]string
	for _, f := range x.Image.Files {
		rows = append(rows, []string{x.Id, state, orDash(x.HostId), f.Disk, f.FileName, fmt.Sprint(f.SizeBytes), when(x.ExpireTime), orDash(x.StateReason)})
	}
	return rows
}

// waitForFiles follows an IMAGE restore until it is RUNNING (its files
// made), drawing its progress on stderr; a restore that ends otherwise is
// an error with its reason.
func waitForFiles(g *globals, cmd *cobra.Command, x *restorev1.Restore) (*restorev1.Restore, error) {
	var (
		bar   *progressbar.Bar
		step  string
		ready *restorev1.Restore
	)
	defer func() {
		if bar != nil {
			bar.Finish()
		}
	}()
	err := follow(g, cmd, &restorev1.WatchRestoresRequest{RecoveryPointId: x.RecoveryPointId}, func(r *restorev1.Restore) (bool, error) {
		if r.Id != x.Id {
			return false, nil
		}
		switch r.State {
		case restorev1.RestoreState_RESTORE_STATE_RUNNING:
			ready = r
			return true, nil
		case restorev1.RestoreState_RESTORE_STATE_PENDING, restorev1.RestoreState_RESTORE_STATE_SCHEDULED, restorev1.RestoreState_RESTORE_STATE_PREPARING:
			if p := r.Progress; p != nil && p.TotalBytes > 0 {
				if bar == nil || p.Step != step {
					if bar != nil {
						bar.Finish()
					}
					bar, step = progressbar.New(cmd.ErrOrStderr(), p.Step, p.TotalBytes, p.DoneBytes), p.Step
				}
				bar.Set(p.DoneBytes)
			}
			return false, nil
		}
		return false, fmt.Errorf("restore %s is %s: %s", r.Id, trimEnum(r.State.String(), "RESTORE_STATE_"), r.StateReason)
	})
	return ready, err
}

func imageDownloadCmd(g *globals) *cobra.Command {
	var disk, file string
	c := &cobra.Command{
		Use:   "download ID [--disk NAME] [--file PATH]",
		Short: "Download an image file of a RUNNING IMAGE restore, resuming a partial file",
		Long: `Ask for a single-use download link and stream the file through the servers,
with a progress bar. A PATH that already holds part of the file is resumed
(HTTP Range); a download cut midway is resumed on the same link, up to 5
times. The link is spent once the last byte arrived.`,
		Example: "  restorectl image download 019a6c2e-... --file web-01.vmdk\n  restorectl image download 019a6c2e-... --disk disk1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var link *restorev1.CreateDownloadResponse
			if err := unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.CreateDownloadResponse, error) {
				return restorev1.NewRestoreServiceClient(conn).CreateDownload(ctx, &restorev1.CreateDownloadRequest{Id: args[0], Disk: disk})
			}, func(resp *restorev1.CreateDownloadResponse) error { link = resp; return nil }); err != nil {
				return err
			}
			if file == "" {
				file = link.FileName
			}
			n, sum, err := download(cmd.Context(), g.caCert, link, file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if sum != link.Sha256 {
				return fmt.Errorf("%s has SHA-256 %s, not the %s its host made: remove it and download it again", file, sum, link.Sha256)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "saved %s (%d bytes, SHA-256 %s verified)\n", file, n, link.Sha256)
			return err
		},
	}
	c.Flags().StringVar(&disk, "disk", "", "the disk whose file to download (needed when there are several)")
	c.Flags().StringVar(&file, "file", "", "where to write it (default: the file's name, in this directory)")
	return c
}

// download fetches a link's file into path, resuming what path holds,
// and returns the file's size and SHA-256 (hex), hashed as it is written
// (a resumed file's first part read once for it).
func download(ctx context.Context, caCert string, link *restorev1.CreateDownloadResponse, path string, progress io.Writer) (int64, string, error) {
	u, err := url.Parse(link.Url)
	if err != nil {
		return 0, "", err
	}
	tlsc, err := pki.DialConfig(caCert, u.Host, nil)
	if err != nil {
		return 0, "", fmt.Errorf("%w: pass --ca-cert or set RESTORED_CA_CERT", err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsc}}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	have, err := io.Copy(h, f) // what an earlier run wrote; f is at its end
	if err != nil {
		return 0, "", err
	}
	if have > link.SizeBytes {
		return 0, "", fmt.Errorf("%s has %d bytes, more than the file's %d: not a part of it (remove it or give another --file)", path, have, link.SizeBytes)
	}
	bar := progressbar.New(progress, link.FileName, link.SizeBytes, have)
	defer bar.Finish()
	for attempt := 0; have < link.SizeBytes; attempt++ {
		n, err := fetchRange(ctx, client, link.Url, have, io.MultiWriter(f, h), func(done int64) { bar.Set(have + done) })
		have += n
		if err == nil {
			continue
		}
		var refused *refusedError
		if errors.As(err, &refused) || attempt >= 5 || ctx.Err() != nil {
			return have, "", fmt.Errorf("download of %s stopped at %d of %d bytes (run the command again to resume): %w", link.FileName, have, link.SizeBytes, err)
		}
	}
	return have, hex.EncodeToString(h.Sum(nil)), f.Sync()
}

// refusedError is an answer that no retry changes (a spent link, a
// deleted restore).
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// fetchRange appends the bytes from offset on to f.
func fetchRange(ctx context.Context, client *http.Client, link string, offset int64, f io.Writer, counted func(int64)) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return 0, err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	want := http.StatusOK
	if offset > 0 {
		want = http.StatusPartialContent
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, &refusedError{msg: fmt.Sprintf("the server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))}
	}
	return io.CopyBuffer(f, &countingReader{r: resp.Body, report: counted}, make([]byte, 256<<10))
}

type countingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.report(c.n)
	return n, err
}
