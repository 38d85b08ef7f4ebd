package fsm_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/fsm"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/version"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// newer is a command type this version does not know.
const newer = raftv1.CommandType(9999)

// entry encodes an envelope of a newer version's command.
func entry(t *testing.T, skippable bool) []byte {
	t.Helper()
	b, err := proto.Marshal(&raftv1.Envelope{Type: newer, Payload: []byte("from the future"), Skippable: skippable})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tenant(t *testing.T, id string) []byte {
	t.Helper()
	b, err := fsm.Encode(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: id}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAnOlderFSMSkipsAnEntryMarkedSkippable(t *testing.T) {
	h := newHarness(t)
	h.f.ApplyEntry(entry(t, true), 1)
	if h.f.Halted() != nil {
		t.Fatal("a skippable entry halted the FSM")
	}
	if res := h.f.ApplyEntry(tenant(t, "acme"), 2); res.Err != nil {
		t.Fatalf("the entry after a skipped one: %v", res.Err)
	}
	if h.st.Read(nil).Tenant("acme") == nil {
		t.Fatal("the entry after a skipped one was not applied")
	}
}

func TestAnOlderFSMStopsApplyingAtAnEntryItMayNotSkip(t *testing.T) {
	h := newHarness(t)
	// In one batch: applied before, halted at, nothing after.
	results := h.f.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: tenant(t, "before")},
		{Index: 2, Type: raft.LogCommand, Data: entry(t, false)},
		{Index: 3, Type: raft.LogCommand, Data: tenant(t, "after")},
	})
	halt := h.f.Halted()
	if halt == nil || halt.Index != 2 || halt.Type != newer {
		t.Fatalf("halt = %v, want index 2 type %d", halt, newer)
	}
	r := h.st.Read(nil)
	if r.Tenant("before") == nil || r.Tenant("after") != nil {
		t.Fatalf("before applied %v, after applied %v: want only the entry before the halt", r.Tenant("before") != nil, r.Tenant("after") != nil)
	}
	var got *fsm.Halt
	if res := results[2].(*fsm.Result); !errors.As(res.Err, &got) {
		t.Fatalf("the entry after the halt answered %v, want the halt", res.Err)
	}
	if res := h.f.ApplyEntry(tenant(t, "later"), 4); !errors.As(res.Err, &got) || h.st.Read(nil).Tenant("later") != nil {
		t.Fatalf("a halted FSM applied index 4 (%v)", res.Err)
	}
	// No snapshot while halted: raft must keep the entries it did not apply.
	if _, err := h.f.Snapshot(); !errors.As(err, &got) {
		t.Fatalf("Snapshot of a halted FSM: %v, want the halt", err)
	}
	// A snapshot from an upgraded leader carries the state past the halt.
	upgraded := newHarness(t)
	upgraded.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT, &raftv1.CreateTenant{Tenant: &restorev1.Tenant{Id: "upgraded"}})
	snap, err := upgraded.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if h.f.Halted() != nil {
		t.Fatal("still halted after installing a snapshot")
	}
	if res := h.f.ApplyEntry(tenant(t, "next"), 5); res.Err != nil || h.st.Read(nil).Tenant("next") == nil {
		t.Fatalf("after the snapshot: %v", res.Err)
	}
}

// Entries written before RestoreReport embedded the public
// ReportRestoreStatusRequest in field 1; they decode into RestoreReport
// unchanged (the raft log never depends on the public API's messages).
func TestAgentReportsWrittenByEarlierVersionsStillDecode(t *testing.T) {
	old, err := proto.Marshal(&restorev1.ReportRestoreStatusRequest{
		ProtocolVersion: version.AgentProtocol, HostId: "h1", RestoreId: "r1", State: restorev1.RestoreState_RESTORE_STATE_RUNNING,
		StateReason: "boot verified", Boot: &restorev1.Boot{Verified: true, TimeToBootMs: 7000, Signals: []string{"serial"}},
		Verification: &restorev1.Verification{Id: "r1", Verdict: restorev1.Verdict_VERDICT_PASSED},
	})
	if err != nil {
		t.Fatal(err)
	}
	when, _ := proto.Marshal(at(5))
	var payload []byte
	payload = protowire.AppendTag(payload, 1, protowire.BytesType)
	payload = protowire.AppendBytes(payload, old)
	payload = protowire.AppendTag(payload, 2, protowire.BytesType)
	payload = protowire.AppendBytes(payload, when)
	var got raftv1.ReportRestoreStatus
	if err := proto.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	rep := got.Report
	if rep.HostId != "h1" || rep.RestoreId != "r1" || rep.State != restorev1.RestoreState_RESTORE_STATE_RUNNING ||
		rep.StateReason != "boot verified" || rep.Boot.GetTimeToBootMs() != 7000 || rep.Verification.GetVerdict() != restorev1.Verdict_VERDICT_PASSED ||
		!got.Time.AsTime().Equal(at(5).AsTime()) {
		t.Fatalf("decoded %v", &got)
	}
}
