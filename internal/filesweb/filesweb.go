// Package filesweb serves file-level restore in the browser: the page
// behind a file browser link (GET /files/{token}/), which lists a
// recovery point's directories (GET /files/{token}/list?path=&page_token=,
// JSON) and downloads a file or a directory (GET
// /files/{token}/download?path=: a redirect to a fresh single-use
// download link, served by package downloadweb). The token is the page's
// only credential, scoped to one tenant's recovery point.
package filesweb

import (
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/api"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("files").Parse(pageHTML))

// Handler serves /files/.
type Handler struct {
	Browsers *api.FileBrowsers
	RP       *api.RecoveryPointService
	Log      *slog.Logger
}

// Register adds the file browser's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /files/{token}/{$}", h.page)
	mux.HandleFunc("GET /files/{token}/list", h.list)
	mux.HandleFunc("GET /files/{token}/download", h.download)
}

// grant checks the token and finds its recovery point.
func (h *Handler) grant(w http.ResponseWriter, r *http.Request) (*restorev1.RecoveryPoint, bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL is the secret
	g, err := h.Browsers.Peek(r.PathValue("token"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusGone)
		return nil, false
	}
	rp, err := h.RP.Browsed(g)
	if err != nil {
		writeError(w, err)
		return nil, false
	}
	return rp, true
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	rp, ok := h.grant(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	_ = page.Execute(w, map[string]string{"RecoveryPoint": rp.Id, "Asset": rp.Asset})
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	rp, ok := h.grant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	resp, err := h.RP.ListFiles(r.Context(), rp, &restorev1.ListRecoveryPointFilesRequest{Id: rp.Id, Path: q.Get("path"), PageToken: q.Get("page_token")})
	if err != nil {
		writeError(w, err)
		return
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(resp)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request) {
	rp, ok := h.grant(w, r)
	if !ok {
		return
	}
	link, err := h.RP.FileDownload(r.Context(), rp, r.URL.Query().Get("path"))
	if err != nil {
		writeError(w, err)
		return
	}
	u, err := url.Parse(link.Url)
	if err != nil {
		writeError(w, err)
		return
	}
	http.Redirect(w, r, u.Path, http.StatusSeeOther) // on the host the browser reached

}

// writeError answers with the API error's HTTP status and message.
func writeError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	http.Error(w, st.Message(), runtime.HTTPStatusFromCode(st.Code()))
}
