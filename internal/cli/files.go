package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/pki"
	"github.com/restored/restored/internal/progressbar"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

func filesCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "files",
		Short: "Browse a recovery point's files and download them, without booting it",
		Long: `File-level restore. Paths are /DISK/VOLUME/...: "/" lists the recovery
point's disks, "/DISK" its volumes (part1, part2, … or "disk" for a
filesystem on the whole disk) with their filesystems (ext4, xfs, ntfs, fat),
and below that the volume's own directories. The host that holds the
recovery point reads it in user space, in a confined process: nothing is
booted or mounted.`,
		Example: "  restorectl files ls rp-42 /\n  restorectl files ls rp-42 /disk0/part1/etc\n  restorectl files get rp-42 /disk0/part1/etc/hostname\n  restorectl files get rp-42 /disk0/part1/home/alice --file alice.tar",
	}
	c.AddCommand(filesLsCmd(g), filesGetCmd(g))
	return c
}

var filesHeader = []string{"MODE", "SIZE", "MODIFIED", "NAME"}

func fileRows(es []*restorev1.FileEntry) [][]string {
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		name := e.Name
		switch {
		case e.Type == restorev1.FileType_FILE_TYPE_DIRECTORY:
			name += "/"
		case e.Type == restorev1.FileType_FILE_TYPE_SYMLINK:
			name += " -> " + e.LinkTarget
		}
		if e.Filesystem != "" {
			name += "  (" + e.Filesystem + ")"
		}
		if e.UnsafeReason != "" {
			name += "  [" + e.UnsafeReason + "]"
		}
		size := progressbar.Bytes(e.SizeBytes)
		if e.Type == restorev1.FileType_FILE_TYPE_DIRECTORY && e.SizeBytes == 0 {
			size = "-"
		}
		rows = append(rows, []string{fileMode(e), size, when(e.ModifyTime), name})
	}
	return rows
}

// fileMode is ls's mode column: the type letter and the permission bits.
func fileMode(e *restorev1.FileEntry) string {
	t := map[restorev1.FileType]string{restorev1.FileType_FILE_TYPE_DIRECTORY: "d", restorev1.FileType_FILE_TYPE_SYMLINK: "l", restorev1.FileType_FILE_TYPE_OTHER: "?"}[e.Type]
	if t == "" {
		t = "-"
	}
	var b strings.Builder
	b.WriteString(t)
	for i := 8; i >= 0; i-- {
		if e.Mode&(1<<i) != 0 {
			b.WriteByte("xwr"[i%3])
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func filesLsCmd(g *globals) *cobra.Command {
	var (
		req restorev1.ListRecoveryPointFilesRequest
		all bool
	)
	c := &cobra.Command{
		Use:     "ls RECOVERY_POINT [PATH]",
		Short:   "List a directory of a recovery point (default /: its disks)",
		Example: "  restorectl files ls rp-42 /disk0\n  restorectl files ls rp-42 /disk0/part2/var/log --all --output json",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Id, req.Path = args[0], "/"
			if len(args) == 2 {
				req.Path = args[1]
			}
			return unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.ListRecoveryPointFilesResponse, error) {
				client := restorev1.NewRecoveryPointServiceClient(conn)
				out := &restorev1.ListRecoveryPointFilesResponse{}
				var err error
				out.Entries, out.NextPageToken, err = pages(all, req.PageToken, func(token string) ([]*restorev1.FileEntry, string, error) {
					req.PageToken = token
					resp, err := client.ListRecoveryPointFiles(ctx, &req)
					out.TotalSize = resp.GetTotalSize()
					return resp.GetEntries(), resp.GetNextPageToken(), err
				})
				return out, err
			}, func(out *restorev1.ListRecoveryPointFilesResponse) error {
				if err := g.show(out, filesHeader, func() [][]string { return fileRows(out.Entries) }); err != nil {
					return err
				}
				if out.NextPageToken != "" && g.output == "table" {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d entries shown: --all for every page, or --page-token %s\n", len(out.Entries), out.TotalSize, out.NextPageToken)
				}
				return nil
			})
		},
	}
	c.Flags().Int32Var(&req.PageSize, "page-size", 0, "entries per page (default 500, max 5000)")
	c.Flags().StringVar(&req.PageToken, "page-token", "", "from a previous page")
	c.Flags().BoolVar(&all, "all", false, "fetch every page")
	return c
}

func filesGetCmd(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "get RECOVERY_POINT PATH [--file OUT]",
		Short: "Download a file (resumable) or a directory (a tar stream) of a recovery point",
		Long: `Ask for a single-use download link and stream the file through the servers,
with a progress bar. A file that OUT already holds part of is resumed (HTTP
Range); a directory arrives as a tar archive (OUT default: NAME.tar) whose
entries keep their modes, times and symbolic links. Symbolic links are never
followed: get the path a link names instead.`,
		Example: "  restorectl files get rp-42 /disk0/part1/etc/hostname\n  restorectl files get rp-42 /disk0/part1/etc --file etc.tar",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var link *restorev1.CreateFileDownloadResponse
			if err := unary(g, cmd, func(ctx context.Context, conn *grpc.ClientConn) (*restorev1.CreateFileDownloadResponse, error) {
				return restorev1.NewRecoveryPointServiceClient(conn).CreateFileDownload(ctx, &restorev1.CreateFileDownloadRequest{Id: args[0], Path: args[1]})
			}, func(resp *restorev1.CreateFileDownloadResponse) error { link = resp; return nil }); err != nil {
				return err
			}
			if file == "" {
				file = link.FileName
			}
			if link.Archive {
				n, err := downloadStream(cmd.Context(), g.caCert, link.Url, link.FileName, file, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "saved %s (a tar archive of %s, %d bytes)\n", file, args[1], n)
				return err
			}
			n, sum, err := download(cmd.Context(), g.caCert, &restorev1.CreateDownloadResponse{Url: link.Url, FileName: link.FileName, SizeBytes: link.SizeBytes}, file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "saved %s (%d bytes, SHA-256 %s)\n", file, n, sum)
			return err
		},
	}
	c.Flags().StringVar(&file, "file", "", "where to write it (default: its name, or NAME.tar for a directory, in this directory)")
	return c
}

// downloadStream fetches a link of unknown size (an archive) into path,
// whole: an archive cannot resume.
func downloadStream(ctx context.Context, caCert, link, label, path string, progress io.Writer) (int64, error) {
	u, err := url.Parse(link)
	if err != nil {
		return 0, err
	}
	tlsc, err := pki.DialConfig(caCert, u.Host, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: pass --ca-cert or set RESTORED_CA_CERT", err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsc}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("the server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bar := progressbar.New(progress, label, 0, 0)
	n, err := io.CopyBuffer(f, &countingReader{r: resp.Body, report: bar.Set}, make([]byte, 256<<10))
	bar.Finish()
	if err != nil {
		return n, fmt.Errorf("the archive was cut after %d bytes (ask for a new link and get it again): %w", n, err)
	}
	return n, f.Sync()
}
