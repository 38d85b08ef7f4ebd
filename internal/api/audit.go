package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/audit"
	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/mdkeys"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/validate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// AuditService implements restore.v1.AuditService.
type AuditService struct {
	restorev1.UnimplementedAuditServiceServer
	*Deps
}

// cursor is where a page ends: the last event's time and id.
type cursor struct {
	at time.Time
	id string
}

func (c cursor) token() string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d|%s", c.at.UnixNano(), c.id)))
}

func parseCursor(tok string) (cursor, error) {
	if tok == "" {
		return cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var ns int64
	var id string
	if err == nil {
		nsText, rest, ok := strings.Cut(string(b), "|")
		if _, err = fmt.Sscan(nsText, &ns); err == nil && ok {
			id = rest
		} else if err == nil {
			err = fmt.Errorf("no id")
		}
	}
	if err != nil {
		return cursor{}, validate.Errorf("page_token %q is not one this service gave", tok)
	}
	return cursor{at: time.Unix(0, ns), id: id}, nil
}

// after says whether ev comes after the cursor.
func (c cursor) after(ev *restorev1.AuditEvent) bool {
	return c.id == "" || audit.Before(&restorev1.AuditEvent{Time: timestamppb.New(c.at), Id: c.id}, ev)
}

// auditFilter is the filter a caller asks for, within what it may see.
func auditFilter(p *auth.Principal, req *restorev1.ListAuditEventsRequest) (audit.Filter, error) {
	f := audit.Filter{Method: req.Method, Outcome: req.Outcome, Target: req.Target}
	if err := validate.EnumOrUnset("outcome", req.Outcome); err != nil {
		return f, err
	}
	for _, x := range []struct{ name, v string }{{"method", req.Method}, {"target", req.Target}, {"tenant", req.Tenant}} {
		if err := validate.Optional(x.name, x.v); err != nil {
			return f, err
		}
	}
	if req.StartTime != nil {
		f.Start = req.StartTime.AsTime()
	}
	if req.EndTime != nil {
		f.End = req.EndTime.AsTime()
	}
	switch {
	case p.Tenant != "" && req.Tenant != "" && req.Tenant != p.Tenant:
		return f, status.Errorf(codes.NotFound, "tenant %q not found", req.Tenant)
	case p.Tenant != "":
		f.Tenant = p.Tenant
	default:
		f.Tenant = req.Tenant
	}
	return f, nil
}

// WatchAuditEvents implements the RPC: the recorded writes kept now that
// match, oldest first, then each one as it is applied.
func (s *AuditService) WatchAuditEvents(req *restorev1.WatchAuditEventsRequest, stream restorev1.AuditService_WatchAuditEventsServer) error {
	f, err := auditFilter(principal(stream.Context()), &restorev1.ListAuditEventsRequest{
		Tenant: req.Tenant, Method: req.Method, Outcome: req.Outcome, Target: req.Target})
	if err != nil {
		return err
	}
	return runWatch(s.Deps, stream, req, watchSpec[*restorev1.AuditEvent]{
		kind: store.KindAudit,
		list: func(r *store.Reader) []*restorev1.AuditEvent {
			return r.AuditEventsFrom(time.Time{}, f.Match, math.MaxInt)
		},
		match: func(_ *store.Reader, ev *restorev1.AuditEvent) bool { return f.Match(ev) },
		send: func(typ restorev1.WatchEventType, rv store.Version, ev *restorev1.AuditEvent) error {
			return stream.Send(&restorev1.WatchAuditEventsResponse{Event: ev, Type: typ, ResourceVersion: rv.String()})
		},
	})
}

// ListAuditEvents implements the RPC: the writes in the log merged with
// every server's refusals, oldest first.
func (s *AuditService) ListAuditEvents(ctx context.Context, req *restorev1.ListAuditEventsRequest) (*restorev1.ListAuditEventsResponse, error) {
	f, err := auditFilter(principal(ctx), req)
	if err != nil {
		return nil, err
	}
	c, err := parseCursor(req.PageToken)
	if err != nil {
		return nil, err
	}
	size := int(req.PageSize)
	switch {
	case size == 0:
		size = 100
	case size < 0 || size > 1000:
		return nil, validate.Errorf("page_size must be 1 to 1000 (default 100), got %d", size)
	}
	// A peer asking for this server's own refusals (see below).
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(mdkeys.AuditLocal)) > 0 && wasForwarded(ctx) {
		return &restorev1.ListAuditEventsResponse{Events: s.localRefusals(f, c, size+1)}, nil
	}
	match := func(ev *restorev1.AuditEvent) bool { return f.Match(ev) && c.after(ev) }
	from := f.Start
	if !c.at.IsZero() && c.at.After(from) {
		from = c.at
	}
	events := s.Store.Read(nil).AuditEventsFrom(from, match, size+1)
	events = append(events, s.localRefusals(f, c, size+1)...)
	peers, missing := s.peerRefusals(ctx, req, size+1)
	events = append(events, peers...)
	slices.SortFunc(events, func(a, b *restorev1.AuditEvent) int {
		if audit.Before(a, b) {
			return -1
		}
		if audit.Before(b, a) {
			return 1
		}
		return 0
	})
	out := &restorev1.ListAuditEventsResponse{MissingServers: missing}
	for _, ev := range events {
		if len(out.Events) == size {
			last := out.Events[size-1]
			out.NextPageToken = cursor{at: last.Time.AsTime(), id: last.Id}.token()
			break
		}
		out.Events = append(out.Events, proto.Clone(ev).(*restorev1.AuditEvent))
	}
	return out, nil
}

func (s *AuditService) localRefusals(f audit.Filter, c cursor, limit int) []*restorev1.AuditEvent {
	if s.Refusals == nil {
		return nil
	}
	var out []*restorev1.AuditEvent
	for _, ev := range s.Refusals.List(f) {
		if c.after(ev) {
			out = append(out, ev)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// peerRefusals asks every other server for the refusals it recorded, and
// names those it could not reach.
func (s *AuditService) peerRefusals(ctx context.Context, req *restorev1.ListAuditEventsRequest, limit int) (out []*restorev1.AuditEvent, missing []string) {
	if s.Peers == nil || wasForwarded(ctx) {
		return nil, nil
	}
	ask := proto.Clone(req).(*restorev1.ListAuditEventsRequest)
	ask.PageSize = int32(min(limit, 1000))
	for _, srv := range s.Store.Read(nil).Servers() {
		if srv.Id == s.ServerID || srv.GrpcAddress == "" {
			continue
		}
		conn, err := s.Peers.conn(srv.GrpcAddress)
		if err == nil {
			// A peer that was down a moment ago: reconnect now rather than
			// after the backoff, and wait for it briefly.
			conn.ResetConnectBackoff()
			pctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(forwardedContext(ctx, s.ServerID), mdkeys.AuditLocal, "1"), 5*time.Second)
			var resp *restorev1.ListAuditEventsResponse
			resp, err = restorev1.NewAuditServiceClient(conn).ListAuditEvents(pctx, ask, grpc.WaitForReady(true))
			cancel()
			if err == nil {
				out = append(out, resp.Events...)
				continue
			}
		}
		s.Log.Warn("a server's refusals are missing from the audit listing", "server", srv.Id, "err", err)
		missing = append(missing, srv.Id)
	}
	return out, missing
}
