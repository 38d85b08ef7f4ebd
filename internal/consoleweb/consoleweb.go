// Package consoleweb serves the restore console in the browser: the page
// behind a single-use console URL (noVNC, installed from npm by make web),
// and its websocket, relayed to the host's agent through the agent's tunnel
// (on this server or, relayed, on the server that holds it).
package consoleweb

import (
	"context"
	_ "embed"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/coder/websocket"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/api"
	"github.com/restored/restored/internal/console"
)

// DefaultNoVNCDir is where make web installs noVNC.
const DefaultNoVNCDir = "web/node_modules/@novnc/novnc"

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("console").Parse(pageHTML))

// Handler serves /console/.
type Handler struct {
	Consoles *api.Consoles
	// Open opens a channel to a host's agent through whichever server
	// holds its tunnel (api.Deps.OpenChannel).
	Open     func(ctx context.Context, hostID string, open *restorev1.TunnelOpen) (io.ReadWriteCloser, error)
	NoVNCDir string
	Log      *slog.Logger
}

// Register adds the console routes to mux: the page, its websocket, and
// noVNC under /console-assets/novnc/.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("GET /console-assets/novnc/", http.StripPrefix("/console-assets/novnc/", h.static()))
	mux.HandleFunc("GET /console/{token}", h.page)
	mux.HandleFunc("GET /console/{token}/ws", h.socket)
}

// static serves noVNC's core and vendor directories only.
func (h *Handler) static() http.Handler {
	files := http.FileServer(http.Dir(h.NoVNCDir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dir, _, _ := strings.Cut(r.URL.Path, "/"); dir != "core" && dir != "vendor" {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL is the secret
	g, err := h.Consoles.Peek(r.PathValue("token"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusGone)
		return
	}
	if _, err := os.Stat(filepath.Join(h.NoVNCDir, "core", "rfb.js")); err != nil {
		http.Error(w, "noVNC is not installed on this server (run make web)", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, map[string]string{"Restore": g.RestoreID})
}

// socket spends the token and relays the websocket to the agent's console
// channel (an RFB stream the agent has already authenticated).
func (h *Handler) socket(w http.ResponseWriter, r *http.Request) {
	g, err := h.Consoles.Use(r.PathValue("token"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusGone)
		return
	}
	ch, err := h.Open(r.Context(), g.HostID, &restorev1.TunnelOpen{Kind: restorev1.TunnelOpenKind_TUNNEL_OPEN_KIND_CONSOLE, RestoreId: g.RestoreID})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		_ = ch.Close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	h.Log.Info("console connected", "restore", g.RestoreID, "host", g.HostID)
	console.Relay(conn, ch)
	h.Log.Info("console disconnected", "restore", g.RestoreID)
}
