package gateway

import (
	"context"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// imageRoutes serve screenshots as the image itself (a portal puts the URL
// in an <img>), through the same gRPC methods, authentication and tenancy as
// everything else.
func imageRoutes(mux *http.ServeMux, conn *grpc.ClientConn) {
	restores := restorev1.NewRestoreServiceClient(conn)
	verifications := restorev1.NewVerificationServiceClient(conn)
	mux.HandleFunc("GET /v1/restores/{id}/screenshot", func(w http.ResponseWriter, r *http.Request) {
		resp, err := restores.GetRestoreScreenshot(outgoing(r), &restorev1.GetRestoreScreenshotRequest{Id: r.PathValue("id")})
		writeImage(w, resp.GetContentType(), resp.GetData(), "no-store", err)
	})
	mux.HandleFunc("GET /v1/verifications/{id}/screenshots/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 32)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": codes.InvalidArgument, "message": "n must be a screenshot number (1, 2, …), got " + strconv.Quote(r.PathValue("n"))})
			return
		}
		resp, err := verifications.GetVerificationScreenshot(outgoing(r), &restorev1.GetVerificationScreenshotRequest{Id: r.PathValue("id"), N: int32(n)})
		writeImage(w, resp.GetContentType(), resp.GetData(), "private, max-age=3600", err)
	})
}

// outgoing passes the caller's credentials to the gRPC call.
func outgoing(r *http.Request) context.Context {
	md := metadata.MD{}
	if a := r.Header.Get("Authorization"); a != "" {
		md.Set("authorization", a)
	}
	return metadata.NewOutgoingContext(r.Context(), md)
}

func writeImage(w http.ResponseWriter, contentType string, data []byte, cache string, err error) {
	if err != nil {
		st := status.Convert(err)
		writeJSON(w, runtime.HTTPStatusFromCode(st.Code()), map[string]any{"code": st.Code(), "message": st.Message(), "details": []any{}})
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}
