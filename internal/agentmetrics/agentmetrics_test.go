package agentmetrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMetricsSayWhatTheAgentDid(t *testing.T) {
	var none *Metrics // an agent without --metrics-addr: every call is a no-op
	none.SetRestores(map[string]int{"RESTORE_STATE_RUNNING": 1})
	none.ObserveBoot(time.Second)
	none.ObserveCall("define", time.Millisecond, nil)
	none.AddNBDServed(1)

	m := New(t.TempDir())
	m.SetRestores(map[string]int{"RESTORE_STATE_RUNNING": 2, "RESTORE_STATE_BOOTING": 1})
	m.SetRestores(map[string]int{"RESTORE_STATE_RUNNING": 3}) // BOOTING is gone, not stale
	m.ObserveBoot(9 * time.Second)
	m.ObserveCall("define", 2*time.Millisecond, nil)
	m.ObserveCall("define", 3*time.Millisecond, errors.New("libvirt said no"))
	m.AddNBDServed(1 << 20)
	m.AddNBDServed(1 << 20)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`restored_agent_restores{state="RESTORE_STATE_RUNNING"} 3`,
		`restored_agent_boot_seconds_count 1`,
		`restored_agent_libvirt_call_seconds_count{call="define"} 2`,
		`restored_agent_libvirt_call_errors_total{call="define"} 1`,
		`restored_agent_work_dir_free_bytes `,
		`restored_agent_nbd_bytes_served_total 2.097152e+06`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in the metrics", want)
		}
	}
	if strings.Contains(string(body), "RESTORE_STATE_BOOTING") {
		t.Error("a state no restore is in any more is still shown")
	}
}
