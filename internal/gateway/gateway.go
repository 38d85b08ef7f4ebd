package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/mdkeys"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// MaxBodyBytes is the largest request body accepted (1 MiB).
const MaxBodyBytes = 1 << 20

// Options configure the HTTP handler.
type Options struct {
	// GRPCAddr is the local gRPC server the gateway calls, with GRPCCreds
	// (this server's own certificate).
	GRPCAddr  string
	GRPCCreds credentials.TransportCredentials
	// Ready reports whether this server can serve (a leader is known and it
	// has caught up), and why not.
	Ready func() (bool, string)
	// Metrics serves /metrics.
	Metrics http.Handler
	// OpenAPI is served at /openapi.json, OpenAPI3 at /openapi3.json.
	OpenAPI, OpenAPI3 []byte
	// Routes adds more routes (the console pages) to the top-level mux.
	Routes func(*http.ServeMux)
}

// Handler is the HTTP side of restored.
type Handler struct {
	http.Handler
	conn *grpc.ClientConn
}

// Close releases the gateway's gRPC connection.
func (h *Handler) Close() error { return h.conn.Close() }

// New builds the HTTP handler.
func New(ctx context.Context, o Options) (*Handler, error) {
	conn, err := grpc.NewClient(o.GRPCAddr, grpc.WithTransportCredentials(o.GRPCCreds))
	if err != nil {
		return nil, fmt.Errorf("gateway connection to %s: %w", o.GRPCAddr, err)
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newJSONMarshaler()),
		runtime.SetQueryParameterParser(&queryParser{}),
		runtime.WithForwardResponseOption(openStream),
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			return metadata.Pairs(mdkeys.HTTPHost, r.Host)
		}),
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			if key == "retry-after" { // a rate limit's wait, with its 429
				return "Retry-After", true
			}
			return runtime.MetadataHeaderPrefix + key, true
		}),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if strings.EqualFold(key, mdkeys.Consistency) {
				return mdkeys.Consistency, true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
	)
	for _, reg := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		restorev1.RegisterRestoreServiceHandler,
		restorev1.RegisterRecoveryPointServiceHandler,
		restorev1.RegisterVerificationServiceHandler,
		restorev1.RegisterVerificationPolicyServiceHandler,
		restorev1.RegisterGuestServiceHandler,
		restorev1.RegisterSnapshotServiceHandler,
		restorev1.RegisterHostServiceHandler,
		restorev1.RegisterAdminServiceHandler,
		restorev1.RegisterAuditServiceHandler,
	} {
		if err := reg(ctx, mux, conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("register gateway handler: %w", err)
		}
	}
	top := http.NewServeMux()
	top.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	top.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := o.Ready()
		if !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	top.Handle("GET /metrics", o.Metrics)
	for path, doc := range map[string][]byte{"GET /openapi.json": o.OpenAPI, "GET /openapi3.json": o.OpenAPI3} {
		top.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(doc)
		})
	}
	imageRoutes(top, conn)
	if o.Routes != nil {
		o.Routes(top)
	}
	top.Handle("/v1/", limitBody(mux))
	return &Handler{Handler: longLived(top), conn: conn}, nil
}

// LongLived says whether a request is a stream that may outlive the
// server's read and write timeouts: a restore watch, a console's websocket.
func LongLived(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, ":watch") || (strings.HasPrefix(r.URL.Path, "/console/") && strings.HasSuffix(r.URL.Path, "/ws"))
}

// longLived lifts the connection's deadlines for streams (everything else
// keeps the server's ReadTimeout and WriteTimeout, so a slow client
// cannot hold a connection open).
func longLived(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if LongLived(r) {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// openStream runs with a nil message when a server stream starts: when the
// server opened it (its headers carry mdkeys.StreamOpen) it sends the 200
// and flushes, so a watcher is connected before the first event. A stream
// the server refused (a bad token) gets no 200 here: the gateway answers
// with the error's status (401) and body.
func openStream(ctx context.Context, w http.ResponseWriter, m proto.Message) error {
	if m != nil {
		return nil
	}
	md, ok := runtime.ServerMetadataFromContext(ctx)
	if !ok || len(md.HeaderMD.Get(mdkeys.StreamOpen)) == 0 {
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}

// limitBody refuses bodies over MaxBodyBytes with 413 before anything runs.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{
				"code": 3, "message": fmt.Sprintf("request body of %d bytes is over the 1 MiB limit", r.ContentLength),
			})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
