package api

import (
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// services are every gRPC service this server registers with a token check.
func services() []protoreflect.ServiceDescriptor {
	var out []protoreflect.ServiceDescriptor
	for _, fd := range []protoreflect.FileDescriptor{
		restorev1.File_restore_v1_admin_proto, restorev1.File_restore_v1_agent_proto, restorev1.File_restore_v1_audit_proto, restorev1.File_restore_v1_guest_proto,
		restorev1.File_restore_v1_host_proto, restorev1.File_restore_v1_recovery_point_proto, restorev1.File_restore_v1_restore_proto,
		restorev1.File_restore_v1_snapshot_proto, restorev1.File_restore_v1_verification_proto,
		restorev1.File_restore_v1_verification_policy_proto, raftv1.File_restored_raft_v1_raft_proto,
	} {
		for i := 0; i < fd.Services().Len(); i++ {
			out = append(out, fd.Services().Get(i))
		}
	}
	return out
}

func TestEveryRPCHasExactlyOneRuleWithRolesAndAPlace(t *testing.T) {
	seen := map[string]bool{}
	for _, sd := range services() {
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i)
			name := "/" + string(sd.FullName()) + "/" + string(md.Name())
			seen[name] = true
			r, ok := rules[name]
			if !ok {
				t.Errorf("%s has no authorization rule: it would be refused for everyone", name)
				continue
			}
			if len(r.roles) == 0 {
				t.Errorf("%s allows no role", name)
			}
			if r.where != anyServer && r.where != onLeader {
				t.Errorf("%s does not say where it runs", name)
			}
			// Streams are served where the caller is connected; only unary
			// calls are forwarded to the leader.
			if (md.IsStreamingClient() || md.IsStreamingServer()) && r.where == onLeader {
				t.Errorf("%s streams but is marked for the leader", name)
			}
		}
	}
	for name := range rules {
		if !seen[name] {
			t.Errorf("rule for %s, which no service has", name)
		}
	}
}
