package api

import (
	"context"
	"strings"
	"time"

	"github.com/restored/restored/internal/audit"
	"github.com/restored/restored/internal/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func public(method string) bool {
	return strings.HasPrefix(method, healthPrefix) || strings.HasPrefix(method, reflectionPrefix)
}

// authenticate checks the caller by the method's rule (a bearer token, an
// agent's certificate, a join token) and the role it allows.
func (d *Deps) authenticate(ctx context.Context, method string) (*auth.Principal, error) {
	switch rules[method].by {
	case byAgentCert:
		return d.agentPrincipal(ctx)
	case byJoinToken:
		return &auth.Principal{Role: auth.RoleAgent}, nil // the handler checks the join token
	case byServerCert:
		if err := requireServerCert(ctx, method); err != nil {
			return nil, err
		}
		return &auth.Principal{Role: auth.RoleServer}, nil
	case byTokenAndServerCert:
		if err := requireServerCert(ctx, method); err != nil {
			return nil, err
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	secret := ""
	for _, v := range md.Get("authorization") {
		if s := auth.BearerFrom(v); s != "" {
			secret = s
		}
	}
	if secret == "" {
		return nil, auth.ErrUnauthenticated
	}
	p, err := d.bearer(secret)
	if err != nil {
		return nil, err
	}
	if !allowed(method, p.Role) {
		return nil, status.Errorf(codes.PermissionDenied, "role %q may not call %s", p.Role, method)
	}
	return p, nil
}

// UnaryInterceptor forwards, authenticates and authorizes unary calls.
func (d *Deps) UnaryInterceptor(fwd *Forwarder) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if public(info.FullMethod) {
			return handler(ctx, req)
		}
		linearizable := wantsLinearizable(ctx)
		if (leaderOnly(info.FullMethod) || linearizable) && !d.Node.IsLeader() {
			if rules[info.FullMethod].by == byAgentCert {
				// The leader sees this server's certificate, not the agent's:
				// this server vouches for the host the agent's names.
				p, err := d.agentPrincipal(ctx)
				if err != nil {
					return nil, err
				}
				ctx = withVouchedHost(ctx, p.Host)
			}
			resp, err := fwd.forward(ctx, info.FullMethod, req)
			if err != errRunLocally {
				return resp, err
			}
		}
		p, err := d.authenticate(ctx, info.FullMethod)
		if err != nil {
			// A client that keeps failing is refused here, neither
			// forwarded nor recorded each time.
			if lerr, flood := d.authFailure(ctx, err); flood {
				return nil, lerr
			}
			// A token minted a moment ago may not have reached this follower
			// yet: let the leader decide.
			if status.Code(err) == codes.Unauthenticated && !d.Node.IsLeader() && !wasForwarded(ctx) {
				if resp, ferr := fwd.forward(ctx, info.FullMethod, req); ferr != errRunLocally {
					return resp, ferr
				}
			}
			d.refused(ctx, info.FullMethod, req, err)
			return nil, err
		}
		if err := d.overTokenLimit(ctx, p); err != nil {
			if d.recordable(err, p.TokenID) {
				d.refused(auth.WithPrincipal(ctx, p), info.FullMethod, req, err)
			}
			return nil, err
		}
		if linearizable {
			if err := d.readIndex(ctx); err != nil {
				return nil, err
			}
		}
		ctx = auth.WithPrincipal(ctx, p)
		written := &inLog{}
		resp, err := handler(context.WithValue(audit.WithRequest(ctx, req), inLogKey{}, written), req)
		// Writes refused before raft are this server's to record (those
		// refused by the state machine are in the log's record already);
		// reads are recorded only when the caller was not let in.
		if err != nil && !written.written && leaderOnly(info.FullMethod) {
			d.refused(ctx, info.FullMethod, req, err)
		}
		return resp, err
	}
}

// refused records a refusal of this server's.
func (d *Deps) refused(ctx context.Context, method string, req any, err error) {
	if d.Refusals != nil && audit.Refused(err) {
		d.Refusals.Record(audit.Refusal(ctx, d.ServerID, method, req, err, d.Now()))
	}
}

// StreamInterceptor authenticates and authorizes streams. Streams are served
// by the server the client is connected to.
func (d *Deps) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if public(info.FullMethod) {
			return handler(srv, ss)
		}
		p, err := d.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			err, flood := d.authFailure(ss.Context(), err)
			if !flood {
				d.refused(ss.Context(), info.FullMethod, nil, err)
			}
			return err
		}
		if err := d.overTokenLimit(ss.Context(), p); err != nil {
			if d.recordable(err, p.TokenID) {
				d.refused(auth.WithPrincipal(ss.Context(), p), info.FullMethod, nil, err)
			}
			return err
		}
		return handler(srv, &principalStream{ServerStream: ss, ctx: auth.WithPrincipal(ss.Context(), p)})
	}
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }

// readIndex makes a read linearizable without writing to the log: confirm
// leadership with a quorum, then wait until everything committed so far is
// applied here.
func (d *Deps) readIndex(ctx context.Context) error {
	if err := d.Node.Raft.VerifyLeader().Error(); err != nil {
		return status.Errorf(codes.Unavailable, "cannot confirm leadership for a linearizable read: %v", err)
	}
	target := d.Node.CommitIndex()
	for d.Node.AppliedIndex() < target {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func principal(ctx context.Context) *auth.Principal {
	if p := auth.FromContext(ctx); p != nil {
		return p
	}
	// Unreachable behind the interceptors; deny rather than panic.
	return &auth.Principal{Tenant: "\x00none"}
}
