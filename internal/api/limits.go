package api

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/restored/restored/internal/audit"
	"github.com/restored/restored/internal/auth"
	"github.com/restored/restored/internal/ratelimit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// RateLimits are this server's limits per caller (nil fields: none).
type RateLimits struct {
	// PerToken: requests (and stream opens) per bearer token.
	PerToken *ratelimit.Limiter
	// AuthFailures: failed authentications per client address; past it a
	// client is refused without its failures being checked or recorded.
	AuthFailures *ratelimit.Limiter
	// Recorded: how many rate-limit refusals per key reach the audit log
	// (a flood of refusals is recorded as a trickle).
	Recorded *ratelimit.Limiter
}

// retryAfterHeader is the metadata key the gateway answers as Retry-After.
const retryAfterHeader = "retry-after"

// exhausted is the RESOURCE_EXHAUSTED refusal of a call over a limit:
// it says how long to wait, in the message, in a RetryInfo detail and in
// the retry-after header (Retry-After over REST, with status 429).
func exhausted(ctx context.Context, wait time.Duration, format string, args ...any) error {
	secs := int(math.Ceil(wait.Seconds()))
	secs = max(secs, 1)
	_ = grpc.SetHeader(ctx, metadata.Pairs(retryAfterHeader, strconv.Itoa(secs)))
	st := status.New(codes.ResourceExhausted, fmt.Sprintf(format, args...)+fmt.Sprintf("; retry in %d s", secs))
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
		st = d
	}
	return st.Err()
}

// overTokenLimit refuses a call of a token over its rate.
func (d *Deps) overTokenLimit(ctx context.Context, p *auth.Principal) error {
	if d.Limits.PerToken == nil || p.TokenID == "" || wasForwarded(ctx) {
		return nil // the server that took the call counted it
	}
	if ok, wait := d.Limits.PerToken.Allow(p.TokenID); !ok {
		return exhausted(ctx, wait, "token %s is over its rate limit", p.TokenID)
	}
	return nil
}

// authFailure turns a failed authentication from a client that keeps
// failing into a rate-limit refusal (reported true: not to be recorded).
func (d *Deps) authFailure(ctx context.Context, err error) (error, bool) {
	if d.Limits.AuthFailures == nil || status.Code(err) != codes.Unauthenticated || wasForwarded(ctx) {
		return err, false
	}
	src := audit.Source(ctx)
	if host, _, herr := net.SplitHostPort(src); herr == nil {
		src = host
	}
	if ok, wait := d.Limits.AuthFailures.Allow(src); !ok {
		return exhausted(ctx, wait, "too many failed authentications from %s", src), true
	}
	return err, false
}

// recordable says whether a rate-limit refusal of key goes to the audit log.
func (d *Deps) recordable(err error, key string) bool {
	if status.Code(err) != codes.ResourceExhausted || d.Limits.Recorded == nil {
		return true
	}
	ok, _ := d.Limits.Recorded.Allow(key)
	return ok
}
