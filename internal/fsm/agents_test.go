package fsm_test

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/grpc/codes"
)

func TestAJoinTokenWorksOnceAndNotAfterItExpires(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"jt-1", "jt-2"} {
		h.mustApply(raftv1.CommandType_COMMAND_TYPE_CREATE_JOIN_TOKEN, &raftv1.CreateJoinToken{Token: &raftv1.StoredJoinToken{
			Token: &restorev1.JoinToken{Id: id, HostId: "kvm-01", CreateTime: at(0), ExpireTime: at(60)}, SecretSha256: []byte{1}}})
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_USE_JOIN_TOKEN, &raftv1.UseJoinToken{Id: "jt-1", Time: at(10)})
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_USE_JOIN_TOKEN, &raftv1.UseJoinToken{Id: "jt-1", Time: at(11)}), codes.Unauthenticated)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_USE_JOIN_TOKEN, &raftv1.UseJoinToken{Id: "jt-2", Time: at(60)}), codes.Unauthenticated)
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_USE_JOIN_TOKEN, &raftv1.UseJoinToken{Id: "nope", Time: at(1)}), codes.Unauthenticated)
	if got := h.st.Read(nil).JoinToken("jt-1").Token.UseTime.AsTime(); !got.Equal(at(10).AsTime()) {
		t.Fatalf("use time %v", got)
	}
	if h.st.Read(nil).JoinToken("jt-2").Token.UseTime != nil {
		t.Fatal("an expired token was spent")
	}
}

func TestRemovingAHostRevokesItsAgentAndForgetsWhatItHeld(t *testing.T) {
	h := newHarness(t)
	seed(h) // r1 placed on h1, which holds rp1
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_REMOVE_HOST, &raftv1.RemoveHost{Id: "h1", Time: at(20)}), codes.FailedPrecondition)
	if h.st.Read(nil).Host("h1") == nil || h.st.Read(nil).Revocation("h1") != nil {
		t.Fatal("a refused removal changed something")
	}
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE, &raftv1.DeleteRestore{Id: "r1", Time: at(21)})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS, &raftv1.ReportRestoreStatus{
		Report: &raftv1.RestoreReport{HostId: "h1", RestoreId: "r1", State: restorev1.RestoreState_RESTORE_STATE_DESTROYED}, Time: at(22)})
	h.mustApply(raftv1.CommandType_COMMAND_TYPE_REMOVE_HOST, &raftv1.RemoveHost{Id: "h1", Time: at(23)})
	r := h.st.Read(nil)
	if r.Host("h1") != nil || r.RecoveryPoint("rp1") != nil {
		t.Fatal("the host or the recovery point only it held is still there")
	}
	if v := r.Revocation("h1"); v == nil || !v.RevokeTime.AsTime().Equal(at(23).AsTime()) {
		t.Fatalf("revocation %v", v)
	}
	wantCode(t, h.apply(raftv1.CommandType_COMMAND_TYPE_REMOVE_HOST, &raftv1.RemoveHost{Id: "h1", Time: at(24)}), codes.NotFound)
}
