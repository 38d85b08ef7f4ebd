// Package downloadweb serves downloads behind single-use links: GET (and
// HEAD) /download/{token}, the bytes relayed from the host's agent through
// its tunnel (on this server or, relayed, on the server that holds it). An
// IMAGE restore's file or a recovery point's file resumes with HTTP Range;
// a directory is a tar stream. A link is spent once the last byte was
// sent; the API mints links (api.RestoreService.CreateDownload,
// api.RecoveryPointService.CreateFileDownload).
package downloadweb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/api"
)

// writeIdle is how long a client may take to accept the next bytes before
// the download is cut (the server's write timeout is for API calls).
const writeIdle = 2 * time.Minute

// Handler serves /download/.
type Handler struct {
	Downloads *api.Downloads
	// Open opens a channel to a host's agent (api.Deps.OpenChannel).
	Open func(ctx context.Context, hostID string, open *restorev1.TunnelOpen) (io.ReadWriteCloser, error)
	// Live says whether a restore still serves its files (RUNNING).
	Live func(restoreID string) bool
	Log  *slog.Logger
}

// Register adds the download route to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /download/{token}", h.get) // GET routes answer HEAD too
}

// ErrRange is a Range header this server does not serve.
var ErrRange = errors.New("unsatisfiable range")

// byteRange reads a Range header of one range against size: the first
// byte and how many. An absent header is the whole file; several ranges
// are refused (ErrRange), like a range that starts past the end.
func byteRange(header string, size int64) (start, n int64, partial bool, err error) {
	if header == "" {
		return 0, size, false, nil
	}
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, false, ErrRange
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, false, ErrRange
	}
	switch {
	case first == "": // the last N bytes
		k, err := strconv.ParseInt(last, 10, 64)
		if err != nil || k <= 0 {
			return 0, 0, false, ErrRange
		}
		k = min(k, size)
		return size - k, k, true, nil
	default:
		a, err := strconv.ParseInt(first, 10, 64)
		if err != nil || a < 0 || a >= size {
			return 0, 0, false, ErrRange
		}
		b := size - 1
		if last != "" {
			if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
				return 0, 0, false, ErrRange
			}
			b = min(b, size-1)
		}
		return a, b - a + 1, true, nil
	}
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL is the secret
	tok := r.PathValue("token")
	g, err := h.Downloads.Peek(tok)
	if err != nil {
		http.Error(w, err.Error(), http.StatusGone)
		return
	}
	if g.RecoveryPointID != "" {
		h.getFile(w, r, tok, g)
		return
	}
	if !h.Live(g.RestoreID) {
		http.Error(w, fmt.Sprintf("restore %s no longer serves its files (deleted or expired)", g.RestoreID), http.StatusGone)
		return
	}
	start, n, partial, err := byteRange(r.Header.Get("Range"), g.Size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", g.Size))
		http.Error(w, fmt.Sprintf("%v: the file has %d bytes; give one range (bytes=FIRST-[LAST])", err, g.Size), http.StatusRequestedRangeNotSatisfiable)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": g.FileName}))
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("ETag", strconv.Quote(g.RestoreID+"/"+g.Disk))
	hd.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+n-1, g.Size))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	c, err := h.Open(r.Context(), g.HostID, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_IMAGE,
		RestoreId: g.RestoreID, Disk: g.Disk, Offset: start, Length: n})
	if err != nil {
		hd.Del("Content-Length")
		hd.Del("Content-Range")
		http.Error(w, fmt.Sprintf("the host of restore %s: %v", g.RestoreID, err), http.StatusBadGateway)
		return
	}
	defer c.Close()
	w.WriteHeader(status)
	sent, err := io.CopyBuffer(&deadlined{w: w, rc: http.NewResponseController(w)}, io.LimitReader(c, n), make([]byte, 256<<10))
	if err == nil && sent < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		// The status line is sent: the client sees a short body and resumes
		// with a Range from what it has.
		h.Log.Warn("download ended early", "restore", g.RestoreID, "disk", g.Disk, "sent", sent, "of", n, "err", err)
		return
	}
	if start+n == g.Size {
		h.Downloads.Spend(tok) // the last byte was sent: a replay is refused
		h.Log.Info("download finished", "restore", g.RestoreID, "disk", g.Disk, "bytes", g.Size)
	}
}

// deadlined moves the write deadline on before each write: a download
// lasts as long as its client keeps reading.
type deadlined struct {
	w  io.Writer
	rc *http.ResponseController
}

func (d *deadlined) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(writeIdle))
	return d.w.Write(p)
}
