package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

type partsClient struct {
	restorev1.AgentServiceClient
	parts []*restorev1.ReportRecoveryPointsRequest
}

func (c *partsClient) ReportRecoveryPoints(_ context.Context, req *restorev1.ReportRecoveryPointsRequest, _ ...grpc.CallOption) (*restorev1.ReportRecoveryPointsResponse, error) {
	c.parts = append(c.parts, req)
	return &restorev1.ReportRecoveryPointsResponse{Accepted: int32(len(req.RecoveryPoints))}, nil
}

// 100,000 recovery points go in parts of at most 1,000 and 512 KiB, of
// one scan, the last one ending it; an empty repository is one last part.
func TestAScanIsReportedInPartsOfOneScan(t *testing.T) {
	for _, c := range []struct {
		n, reasonLen, wantParts int
	}{{100_000, 0, 100}, {2500, 0, 3}, {0, 0, 1}, {1000, 1000, 0}} {
		t.Run(fmt.Sprint(c.n, "+", c.reasonLen), func(t *testing.T) {
			report := make([]*restorev1.RecoveryPoint, c.n)
			for i := range report {
				report[i] = &restorev1.RecoveryPoint{Id: fmt.Sprintf("rp-%06d", i), Tenant: "acme", Asset: "web", InvalidReason: strings.Repeat("r", c.reasonLen)}
			}
			cl := &partsClient{}
			if err := reportInParts(context.Background(), cl, "kvm-01", report); err != nil {
				t.Fatal(err)
			}
			if c.wantParts > 0 && len(cl.parts) != c.wantParts {
				t.Fatalf("%d parts, want %d", len(cl.parts), c.wantParts)
			}
			total := 0
			for i, p := range cl.parts {
				total += len(p.RecoveryPoints)
				if p.ScanId != cl.parts[0].ScanId || p.ScanId == "" || p.More != (i < len(cl.parts)-1) {
					t.Fatalf("part %d: scan %q more %v", i, p.ScanId, p.More)
				}
				if len(p.RecoveryPoints) > partRecoveryPoints || proto.Size(p) > partBytes+4096 {
					t.Fatalf("part %d: %d recovery points, %d bytes", i, len(p.RecoveryPoints), proto.Size(p))
				}
			}
			if total != c.n {
				t.Fatalf("%d recovery points sent of %d", total, c.n)
			}
		})
	}
}
