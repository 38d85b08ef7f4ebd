package store

import (
	"time"

	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TokenEnd is when a token stops working: its revocation or its expiry,
// whichever comes first; zero when neither is set. Authentication, open
// streams and pruning all ask here.
func TokenEnd(t *raftv1.StoredToken) time.Time {
	var end time.Time
	for _, ts := range []*timestamppb.Timestamp{t.GetToken().GetRevokeTime(), t.GetToken().GetExpireTime()} {
		if ts == nil {
			continue
		}
		if at := ts.AsTime(); end.IsZero() || at.Before(end) {
			end = at
		}
	}
	return end
}

// TokenUsable reports whether a token authenticates at now.
func TokenUsable(t *raftv1.StoredToken, now time.Time) bool {
	end := TokenEnd(t)
	return t != nil && (end.IsZero() || now.Before(end))
}
