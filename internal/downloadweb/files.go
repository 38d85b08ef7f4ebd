package downloadweb

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/restored/restored/internal/api"
	"google.golang.org/grpc/status"
)

// getFile serves a recovery point's file (ranged) or directory (a tar
// stream). The host is asked before the status line is sent, so a path
// that is gone or unreadable is an HTTP error with the host's reason, not
// a cut body.
func (h *Handler) getFile(w http.ResponseWriter, r *http.Request, tok string, g api.DownloadGrant) {
	hd := w.Header()
	start, n, partial := int64(0), g.Size, false
	if !g.Archive {
		var err error
		if start, n, partial, err = byteRange(r.Header.Get("Range"), g.Size); err != nil && g.Size > 0 {
			hd.Set("Content-Range", fmt.Sprintf("bytes */%d", g.Size))
			http.Error(w, fmt.Sprintf("%v: the file has %d bytes; give one range (bytes=FIRST-[LAST])", err, g.Size), http.StatusRequestedRangeNotSatisfiable)
			return
		}
	}
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": g.FileName}))
	hd.Set("ETag", strconv.Quote(g.RecoveryPointID+g.Path))
	if g.Archive {
		hd.Set("Content-Type", "application/x-tar")
		hd.Set("Accept-Ranges", "none")
	} else {
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Accept-Ranges", "bytes")
		hd.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	status := http.StatusOK
	if partial {
		hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+n-1, g.Size))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	c, err := h.Open(r.Context(), g.HostID, api.FileOpen(g, start, n))
	if err != nil {
		h.fileError(w, g, api.FileError(g.HostID, err))
		return
	}
	defer c.Close()
	first := make([]byte, 256<<10)
	k, err := io.ReadAtLeast(c, first, 1)
	if err != nil && !(err == io.EOF && !g.Archive && n == 0) {
		h.fileError(w, g, api.FileError(g.HostID, err))
		return
	}
	w.WriteHeader(status)
	dst := &deadlined{w: w, rc: http.NewResponseController(w)}
	if _, err := dst.Write(first[:k]); err != nil {
		return
	}
	src := io.Reader(c)
	if !g.Archive {
		src = io.LimitReader(c, n-int64(k))
	}
	sent, err := io.CopyBuffer(dst, src, make([]byte, 256<<10))
	sent += int64(k)
	if err == nil && !g.Archive && sent < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		h.Log.Warn("file download ended early", "recovery_point", g.RecoveryPointID, "path", g.Path, "sent", sent, "err", err)
		return
	}
	if g.Archive || start+n == g.Size {
		h.Downloads.Spend(tok)
		h.Log.Info("file download finished", "recovery_point", g.RecoveryPointID, "path", g.Path, "bytes", sent)
	}
}

func (h *Handler) fileError(w http.ResponseWriter, g api.DownloadGrant, err error) {
	hd := w.Header()
	for _, k := range []string{"Content-Length", "Content-Range", "Content-Disposition", "Accept-Ranges", "ETag"} {
		hd.Del(k)
	}
	st := status.Convert(err)
	http.Error(w, fmt.Sprintf("%s of recovery point %s: %s", g.Path, g.RecoveryPointID, st.Message()), runtime.HTTPStatusFromCode(st.Code()))
}
