// Package audit owns the audit record: who did what, and what became of
// it. A write's record is made from its raft entry (the proposer's
// AuditContext rides in the entry's envelope, so every server records the
// same event when it applies the entry); a refusal before raft is
// recorded by the server that refused it, in a log of its own
// (Refusals). It decides what is recorded and how an event is matched by
// a filter; it must never record a secret (a token's secret, a join
// token, a key) — only ids.
package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/auth"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/mdkeys"
	"github.com/restored/restored/internal/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultRetention is how long events are kept.
const DefaultRetention = 90 * 24 * time.Hour

type requestKey struct{}

// WithRequest keeps the request a handler serves, for the ids it names.
func WithRequest(ctx context.Context, req any) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

// Caller is how an event names a principal: never a secret.
func Caller(p *auth.Principal) string {
	switch {
	case p == nil:
		return "anonymous"
	case p.Role == auth.RoleAgent && p.Host != "":
		return "agent:" + p.Host
	case p.Role == auth.RoleServer:
		return "server"
	case p.TokenID != "":
		return "token:" + p.TokenID
	}
	return "anonymous"
}

// serverPeer says whether the caller presented a server certificate: only
// then are the source it passes on believed.
func serverPeer(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return false
	}
	id, err := pki.IdentityOf(info.State.PeerCertificates[0])
	return err == nil && id.Role == pki.RoleServer
}

// Source is the caller's address: the one the first server (or the REST
// gateway) saw, when a server passes it on; else the peer's.
func Source(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if serverPeer(ctx) {
		for _, k := range []string{mdkeys.Source, mdkeys.ForwardedFor} {
			if v := md.Get(k); len(v) > 0 && v[0] != "" {
				first, _, _ := strings.Cut(v[0], ",")
				return strings.TrimSpace(first)
			}
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// Context is the AuditContext of a write a server proposes while serving
// ctx (nil principal: a write of the server's own, e.g. the scheduler's).
func Context(ctx context.Context, serverID string, now time.Time) *raftv1.AuditContext {
	p := auth.FromContext(ctx)
	ac := &raftv1.AuditContext{ServerId: serverID, Time: timestamppb.New(now)}
	if p == nil {
		ac.Caller, ac.Role = "system:"+serverID, "system"
		return ac
	}
	ac.Caller, ac.Tenant, ac.Role = Caller(p), p.Tenant, string(p.Role)
	ac.Method, _ = grpc.Method(ctx)
	ac.Source = Source(ctx)
	if m, ok := ctx.Value(requestKey{}).(proto.Message); ok {
		ac.RequestId = stringField(m.ProtoReflect(), "request_id")
	}
	return ac
}

func stringField(m protoreflect.Message, name protoreflect.Name) string {
	if f := m.Descriptor().Fields().ByName(name); f != nil && f.Kind() == protoreflect.StringKind && !f.IsList() {
		return m.Get(f).String()
	}
	return ""
}

// Targets are the ids a message names: its id and *_id fields, its ids,
// and those of the messages it holds directly (a command's restore, a
// response's guest), never anything else.
func Targets(msgs ...proto.Message) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	var walk func(m protoreflect.Message, depth int)
	walk = func(m protoreflect.Message, depth int) {
		m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			name := string(f.Name())
			switch {
			case f.Kind() == protoreflect.StringKind && !f.IsList() && (name == "id" || strings.HasSuffix(name, "_id")) && name != "request_id":
				add(v.String())
			case f.Kind() == protoreflect.StringKind && f.IsList() && strings.HasSuffix(name, "_ids"):
				for i := 0; i < v.List().Len(); i++ {
					add(v.List().Get(i).String())
				}
			case f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() && depth < 1:
				walk(v.Message(), depth+1)
			}
			return true
		})
	}
	for _, m := range msgs {
		if m != nil {
			walk(m.ProtoReflect(), 0)
		}
	}
	return out
}

// tenantOf is the tenant a message belongs to, if it says.
func tenantOf(m proto.Message) string {
	if m == nil {
		return ""
	}
	r := m.ProtoReflect()
	if t := stringField(r, "tenant"); t != "" {
		return t
	}
	var t string
	r.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() {
			t = stringField(v.Message(), "tenant")
		}
		return t == ""
	})
	return t
}

// Write is the event of a raft entry at index: the proposer's context,
// the command and its result (nil when refused), err the refusal.
func Write(index uint64, ac *raftv1.AuditContext, t raftv1.CommandType, cmd, result proto.Message, err error) *restorev1.AuditEvent {
	if ac == nil {
		ac = &raftv1.AuditContext{Caller: "system", Role: "system"}
	}
	ev := &restorev1.AuditEvent{
		Id: fmt.Sprintf("w-%020d", index), Time: ac.Time, Caller: ac.Caller, Tenant: ac.Tenant, Role: ac.Role,
		Method: ac.Method, Targets: Targets(cmd, result), RequestId: ac.RequestId, Outcome: restorev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED,
		Source: ac.Source, ServerId: ac.ServerId,
	}
	if ev.Method == "" {
		ev.Method = t.String()
	}
	if tt := tenantOf(result); tt != "" && tt != ac.Tenant {
		ev.TargetTenant = tt
	} else if tt := tenantOf(cmd); tt != "" && tt != ac.Tenant {
		ev.TargetTenant = tt
	}
	if err != nil {
		ev.Outcome = restorev1.AuditOutcome_AUDIT_OUTCOME_REFUSED
		ev.Code, ev.Message = status.Code(err).String(), status.Convert(err).Message()
	}
	return ev
}

// Refused says whether an error is a refusal the audit records: the
// caller was not let in, or asked for what it may not have.
func Refused(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.FailedPrecondition,
		codes.ResourceExhausted, codes.AlreadyExists, codes.NotFound, codes.OutOfRange:
		return true
	}
	return false
}

// Refusal is the event of a call this server refused before raft.
func Refusal(ctx context.Context, serverID, method string, req any, err error, now time.Time) *restorev1.AuditEvent {
	p := auth.FromContext(ctx)
	ev := &restorev1.AuditEvent{
		Time: timestamppb.New(now), Caller: Caller(p), Method: method, Outcome: restorev1.AuditOutcome_AUDIT_OUTCOME_REFUSED,
		Code: status.Code(err).String(), Message: status.Convert(err).Message(), Source: Source(ctx), ServerId: serverID,
	}
	if p != nil {
		ev.Tenant, ev.Role = p.Tenant, string(p.Role)
	}
	if m, ok := req.(proto.Message); ok {
		ev.Targets = Targets(m)
		ev.RequestId = stringField(m.ProtoReflect(), "request_id")
	}
	return ev
}

// Filter selects events.
type Filter struct {
	Start, End time.Time
	// Tenant: only events of this tenant (as caller or as the targets'
	// owner); "" is every tenant.
	Tenant  string
	Method  string
	Outcome restorev1.AuditOutcome
	Target  string
}

// Match says whether ev passes the filter.
func (f Filter) Match(ev *restorev1.AuditEvent) bool {
	t := ev.GetTime().AsTime()
	switch {
	case !f.Start.IsZero() && t.Before(f.Start), !f.End.IsZero() && !t.Before(f.End):
		return false
	case f.Tenant != "" && ev.Tenant != f.Tenant && ev.TargetTenant != f.Tenant:
		return false
	case f.Method != "" && ev.Method != f.Method && !strings.HasSuffix(ev.Method, "/"+f.Method):
		return false
	case f.Outcome != restorev1.AuditOutcome_AUDIT_OUTCOME_UNSPECIFIED && ev.Outcome != f.Outcome:
		return false
	case f.Target != "" && !slices.Contains(ev.Targets, f.Target):
		return false
	}
	return true
}

// Before orders events: by time, then id.
func Before(a, b *restorev1.AuditEvent) bool {
	ta, tb := a.GetTime().AsTime(), b.GetTime().AsTime()
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.Id < b.Id
}
