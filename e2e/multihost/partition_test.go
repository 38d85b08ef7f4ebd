package multihost

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/testcluster"
	"github.com/restored/restored/internal/testnet"
)

// partition cuts the leader's namespace off from the other two servers
// (the client still reaches every server): every write sent to the old
// leader is refused or times out, the majority elects a leader and
// acknowledges writes, and once healed the old leader holds every
// acknowledged write and none of the refused ones.
func (l *lab) partition(t *testing.T) {
	ctx := context.Background()
	leader, err := l.cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	others := l.cluster.Followers(leader)
	var otherNS []*testnet.Host
	for _, p := range others {
		otherNS = append(otherNS, p.Host())
	}
	if err := leader.Host().Partition(ctx, otherNS...); err != nil {
		t.Fatal(err)
	}
	healed := false
	heal := func() {
		if !healed {
			healed = true
			if err := leader.Host().Heal(ctx, otherNS...); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer heal()
	cut := time.Now()
	write := func(p *testcluster.Proc, id string) error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := restorev1.NewAdminServiceClient(p.Conn()).CreateTenant(testcluster.Ctx(wctx, l.cluster.Token), &restorev1.CreateTenantRequest{Id: id})
		return err
	}
	var refused, acked []string
	newLeader := ""
	for i := 0; len(acked) < 3 || time.Since(cut) < 5*time.Second; i++ {
		if time.Since(cut) > time.Minute {
			t.Fatalf("after a minute of partition: new leader %q, %d writes acknowledged by the majority", newLeader, len(acked))
		}
		id := fmt.Sprintf("cut-%d", i)
		if err := write(leader, id); err == nil {
			t.Fatalf("the partitioned old leader %s acknowledged write %s", leader.ID, id)
		}
		refused = append(refused, id)
		if st, err := l.cluster.Status(ctx, others[0]); err == nil && st.LeaderId != "" && st.LeaderId != leader.ID {
			if newLeader == "" {
				t.Logf("the majority elected %s %s after the cut", st.LeaderId, time.Since(cut).Round(time.Millisecond))
			}
			newLeader = st.LeaderId
		}
		if newLeader != "" {
			id := fmt.Sprintf("kept-%d", i)
			if err := write(others[i%len(others)], id); err == nil {
				acked = append(acked, id)
			}
		}
	}
	t.Logf("partition: %d writes sent to the old leader, none acknowledged; %d acknowledged by the majority", len(refused), len(acked))
	heal()
	healedAt := time.Now()
	tenants := func(p *testcluster.Proc) []string {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := restorev1.NewAdminServiceClient(p.Conn()).ListTenants(testcluster.Ctx(rctx, l.cluster.Token), &restorev1.ListTenantsRequest{})
		if err != nil {
			return nil
		}
		var ids []string
		for _, x := range resp.Tenants {
			ids = append(ids, x.Id)
		}
		return ids
	}
	l.eventually(60*time.Second, "the old leader "+leader.ID+" caught up", func() bool {
		have := tenants(leader)
		for _, id := range acked {
			if !slices.Contains(have, id) {
				return false
			}
		}
		return len(have) > 0
	})
	t.Logf("the old leader caught up %s after the heal", time.Since(healedAt).Round(time.Millisecond))
	for _, p := range l.cluster.Procs {
		for _, id := range tenants(p) {
			if strings.HasPrefix(id, "cut-") {
				t.Fatalf("server %s holds %s, a write the partitioned leader never acknowledged", p.ID, id)
			}
		}
	}
}
