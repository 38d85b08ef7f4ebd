package gateway

import (
	"net/url"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
)

func TestBodiesAcceptEnumValuesWithAndWithoutPrefix(t *testing.T) {
	tests := []struct {
		body     string
		wantMode restorev1.Mode
		wantNet  restorev1.NetworkKind
		wantErr  bool
	}{
		{body: `{"mode":"VIRTUALIZE"}`, wantMode: restorev1.Mode_MODE_VIRTUALIZE},
		{body: `{"mode":"MODE_VERIFY"}`, wantMode: restorev1.Mode_MODE_VERIFY},
		{body: `{"mode":"verify"}`, wantMode: restorev1.Mode_MODE_VERIFY},
		{body: `{"mode":2}`, wantMode: restorev1.Mode_MODE_VERIFY},
		{body: `{"mode":"VERIFY","network":{"kind":"ISOLATED"}}`, wantMode: restorev1.Mode_MODE_VERIFY, wantNet: restorev1.NetworkKind_NETWORK_KIND_ISOLATED},
		{body: `{"mode":"VERIFY","memoryMib":"512"}`, wantMode: restorev1.Mode_MODE_VERIFY},
		{body: `{"mode":"BOGUS"}`, wantErr: true},
		{body: `{"mode":`, wantErr: true},
		{body: `{"unknown_field":1}`, wantErr: true},
	}
	m := newJSONMarshaler()
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var req restorev1.CreateRestoreRequest
			err := m.NewDecoder(strings.NewReader(tt.body)).Decode(&req)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (req.Mode != tt.wantMode || req.GetNetwork().GetKind() != tt.wantNet) {
				t.Fatalf("mode %v network %v", req.Mode, req.GetNetwork().GetKind())
			}
		})
	}
}

func TestLargeIntegersSurviveNormalization(t *testing.T) {
	var req restorev1.CreateRestoreRequest
	if err := newJSONMarshaler().NewDecoder(strings.NewReader(`{"memory_mib":9007199254740993}`)).Decode(&req); err != nil {
		t.Fatal(err)
	}
	if req.MemoryMib != 9007199254740993 {
		t.Fatalf("memory_mib %d lost precision", req.MemoryMib)
	}
}

func TestQueryParametersAcceptUnprefixedEnums(t *testing.T) {
	var q queryParser
	for _, v := range []string{"RUNNING", "running", "RESTORE_STATE_RUNNING"} {
		var req restorev1.ListRestoresRequest
		if err := q.Parse(&req, url.Values{"state": {v}}, utilities.NewDoubleArray(nil)); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if req.State != restorev1.RestoreState_RESTORE_STATE_RUNNING {
			t.Fatalf("%s parsed as %v", v, req.State)
		}
	}
}
