package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"github.com/restored/restored/internal/version"
)

// progressEvery is how often a long step's progress is reported (each
// report is a raft entry).
const progressEvery = 2 * time.Second

// progress reports a PREPARING restore's long steps to the control plane:
// the step, the bytes done of the total, the rate since the step began
// and the time left at that rate. A new step is reported at once; the
// bytes of one at most every progressEvery.
type progress struct {
	p  *restores
	id string
	// state is what the reports say the restore is (PREPARING, or
	// PROMOTING while its disks are copied).
	state restorev1.RestoreState

	mu    sync.Mutex
	step  string
	began time.Time
	last  time.Time
}

func (p *restores) progressOf(id string) *progress { return p.progressIn(id, lifecycle.Preparing) }

// progressIn reports a long step of a restore in state.
func (p *restores) progressIn(id string, state restorev1.RestoreState) *progress {
	return &progress{p: p, id: id, state: state}
}

// Progress computes the figures of pr and reports them when due.
func (g *progress) Progress(ctx context.Context, pr hypervisor.Progress) {
	g.mu.Lock()
	now := time.Now()
	if pr.Step != g.step {
		g.step, g.began, g.last = pr.Step, now, time.Time{}
	}
	due := now.Sub(g.last) >= progressEvery || (pr.Total > 0 && pr.Done == pr.Total)
	if !due {
		g.mu.Unlock()
		return
	}
	g.last = now
	out := Figures(pr, now.Sub(g.began))
	g.mu.Unlock()
	reason := pr.Step
	switch {
	case pr.Total > 0 && out.BytesPerSecond > 0:
		reason = fmt.Sprintf("%s: %.1f of %.1f MiB at %.1f MiB/s, %d s left", pr.Step, mib(pr.Done), mib(pr.Total), mib(out.BytesPerSecond), out.EtaSeconds)
	case pr.Total > 0:
		reason = fmt.Sprintf("%s: %.1f of %.1f MiB", pr.Step, mib(pr.Done), mib(pr.Total))
	}
	_ = g.p.rep.reportRestore(ctx, &restorev1.ReportRestoreStatusRequest{
		ProtocolVersion: version.AgentProtocol, HostId: g.p.hostID, RestoreId: g.id, State: g.state,
		StateReason: clampReason(reason), Progress: out,
	})
}

// Figures are a step's progress as the API carries it, after elapsed.
func Figures(pr hypervisor.Progress, elapsed time.Duration) *restorev1.Progress {
	out := &restorev1.Progress{Step: pr.Step, DoneBytes: pr.Done, TotalBytes: pr.Total}
	if s := elapsed.Seconds(); s > 0 && pr.Done > 0 {
		out.BytesPerSecond = int64(float64(pr.Done) / s)
	}
	if out.BytesPerSecond > 0 {
		out.EtaSeconds = (pr.Total - pr.Done + out.BytesPerSecond - 1) / out.BytesPerSecond
	}
	return out
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
