package agent

import (
	"context"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"

	"github.com/google/uuid"
	"github.com/restored/restored/internal/version"
	"google.golang.org/protobuf/proto"
)

// A report part's limits: well under the servers' 1 MiB message limit, and
// a raft entry of reasonable size.
const (
	partRecoveryPoints = 1000
	partBytes          = 512 << 10
)

// reportInParts sends one scan's recovery points in parts of one scan id;
// the last part (more false) makes the servers withdraw what the scan did
// not list. 100,000 recovery points are a hundred parts.
func reportInParts(ctx context.Context, client restorev1.AgentServiceClient, hostID string, report []*restorev1.RecoveryPoint) error {
	scan := uuid.NewString()
	send := func(part []*restorev1.RecoveryPoint, more bool) error {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := client.ReportRecoveryPoints(rctx, &restorev1.ReportRecoveryPointsRequest{
			ProtocolVersion: version.AgentProtocol, HostId: hostID, RecoveryPoints: part, ScanId: scan, More: more,
		})
		return err
	}
	var part []*restorev1.RecoveryPoint
	size := 0
	for _, rp := range report {
		n := proto.Size(rp) + 8
		if len(part) > 0 && (len(part) == partRecoveryPoints || size+n > partBytes) {
			if err := send(part, true); err != nil {
				return err
			}
			part, size = nil, 0
		}
		part, size = append(part, rp), size+n
	}
	return send(part, false)
}
