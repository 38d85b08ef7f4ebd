package e2e

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// mutation is one hostile value for one field.
type mutation struct {
	name string
	set  func(m protoreflect.Message, f protoreflect.FieldDescriptor)
}

// hostile values per kind of field: empty, too long, control characters,
// paths, another tenant's id, an id of the wrong kind, negative, zero,
// huge, unknown enum numbers, huge lists.
func mutationsFor(f protoreflect.FieldDescriptor, otherTenantID, wrongKindID string) []mutation {
	str := func(name, v string) mutation {
		return mutation{name, func(m protoreflect.Message, f protoreflect.FieldDescriptor) { m.Set(f, protoreflect.ValueOfString(v)) }}
	}
	num := func(name string, v int64) mutation {
		return mutation{name, func(m protoreflect.Message, f protoreflect.FieldDescriptor) {
			switch f.Kind() {
			case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
				m.Set(f, protoreflect.ValueOfInt32(int32(max(min(v, math.MaxInt32), math.MinInt32))))
			case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
				m.Set(f, protoreflect.ValueOfUint32(uint32(v)))
			case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
				m.Set(f, protoreflect.ValueOfUint64(uint64(v)))
			default:
				m.Set(f, protoreflect.ValueOfInt64(v))
			}
		}}
	}
	if f.IsList() {
		return []mutation{{"10,000 entries", func(m protoreflect.Message, f protoreflect.FieldDescriptor) {
			l := m.Mutable(f).List()
			for i := 0; i < 10000; i++ {
				switch f.Kind() {
				case protoreflect.StringKind:
					l.Append(protoreflect.ValueOfString(fmt.Sprint("x", i)))
				case protoreflect.MessageKind:
					l.Append(protoreflect.ValueOfMessage(l.NewElement().Message()))
				case protoreflect.EnumKind:
					l.Append(protoreflect.ValueOfEnum(99))
				default:
					l.Append(l.NewElement())
				}
			}
		}}}
	}
	if f.IsMap() {
		return nil
	}
	switch f.Kind() {
	case protoreflect.StringKind:
		return []mutation{
			str("empty", ""), str("100 KB", strings.Repeat("x", 100_000)), str("control characters", "a\x00b\x07c\n"),
			str("right-to-left override", "rp\u202e1"), str("a path out", "../../../etc/shadow"), str("an absolute path", "/etc/shadow"),
			str("SQL and XML", `'; DROP TABLE x; --<a href="x">`), str("another tenant's id", otherTenantID), str("an id of another kind", wrongKindID),
		}
	case protoreflect.EnumKind:
		return []mutation{{"unknown enum 99", func(m protoreflect.Message, f protoreflect.FieldDescriptor) { m.Set(f, protoreflect.ValueOfEnum(99)) }},
			{"unknown enum -1", func(m protoreflect.Message, f protoreflect.FieldDescriptor) { m.Set(f, protoreflect.ValueOfEnum(-1)) }}}
	case protoreflect.BoolKind:
		return []mutation{{"true", func(m protoreflect.Message, f protoreflect.FieldDescriptor) { m.Set(f, protoreflect.ValueOfBool(true)) }}}
	case protoreflect.BytesKind:
		return []mutation{{"1 MB of junk", func(m protoreflect.Message, f protoreflect.FieldDescriptor) {
			m.Set(f, protoreflect.ValueOfBytes([]byte(strings.Repeat("\xff", 900_000))))
		}}}
	case protoreflect.MessageKind:
		return []mutation{{"empty message", func(m protoreflect.Message, f protoreflect.FieldDescriptor) { m.Mutable(f) }}}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return nil
	}
	return []mutation{num("negative", -1), num("zero", 0), num("huge", math.MaxInt64), num("most negative", math.MinInt64)}
}

// Every unary RPC of every public service, every field of its request set
// to each hostile value in turn, with a partner's and an admin's token:
// each answer is a success or a typed refusal a client can act on (never
// Internal, Unknown or a dropped connection), and a refusal writes nothing
// to raft.
func TestEveryFieldOfEveryPublicRPCGetsATypedAnswer(t *testing.T) {
	e := startServer(t)
	acme := e.partner("acme")
	globex := e.partner("globex")
	e.agent("kvm-01", rp("rp-1", "acme", "web"), rp("rp-g", "globex", "db"))
	otherRestore := e.createRestore(globex, "rp-g", "globex-1")
	e.createRestore(acme, "rp-1", "acme-1")

	var methods []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if fd.Package() != "restore.v1" {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			if sd.Name() == "AgentService" { // agents' own protocol: by certificate, tested in e2e/tls_test.go
				continue
			}
			for j := 0; j < sd.Methods().Len(); j++ {
				if md := sd.Methods().Get(j); !md.IsStreamingClient() && !md.IsStreamingServer() {
					methods = append(methods, md)
				}
			}
		}
		return true
	})
	sort.Slice(methods, func(i, j int) bool { return methods[i].FullName() < methods[j].FullName() })

	typed := map[codes.Code]bool{
		codes.OK: true, codes.InvalidArgument: true, codes.NotFound: true, codes.FailedPrecondition: true, codes.PermissionDenied: true,
		codes.AlreadyExists: true, codes.ResourceExhausted: true, codes.OutOfRange: true, codes.Unauthenticated: true,
	}
	// Valid requests for the RPCs with most to check: a mutated field is
	// then the only thing wrong (other RPCs start from an empty request).
	bases := map[string]string{
		"CreateRestore":         `{"recovery_point_id":"rp-1","mode":"MODE_VIRTUALIZE","vcpus":1,"memory_mib":256,"ttl_seconds":600,"request_id":"base"}`,
		"CreateTenant":          `{"id":"initech","display_name":"Initech"}`,
		"CreateToken":           `{"tenant":"acme","role":"partner","ttl_seconds":3600}`,
		"SetTenantQuota":        `{"id":"acme","quota":{"max_restores":100}}`,
		"SetVerificationPolicy": `{"asset":"web","policy":{"interval_seconds":3600,"memory_mib":256}}`,
		"RegisterGuest":         `{"host_id":"kvm-01","name":"web-01","tenant":"acme"}`,
		"CreateJoinToken":       `{"host_id":"kvm-02","ttl_seconds":600}`,
		"ListAuditEvents":       `{"page_size":10}`,
		"ListRestores":          `{"page_size":10}`,
		"CreateSnapshot":        `{"guest_id":"g-nope","lease_seconds":600,"request_id":"base"}`,
	}
	calls, refused := 0, 0
	byCode := map[codes.Code]int{}
	for _, md := range methods {
		method := fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())
		fields := md.Input().Fields()
		for i := 0; i < fields.Len(); i++ {
			f := fields.Get(i)
			for _, mu := range mutationsFor(f, otherRestore, "kvm-01") {
				for _, who := range []struct{ name, token string }{{"partner", acme}, {"admin", e.admin}} {
					req := dynamicpb.NewMessage(md.Input())
					if b, ok := bases[string(md.Name())]; ok {
						if err := protojson.Unmarshal([]byte(b), req); err != nil {
							t.Fatalf("base of %s: %v", md.Name(), err)
						}
					}
					mu.set(req, f)
					resp := dynamicpb.NewMessage(md.Output())
					before := e.commitIndex()
					err := e.conn.Invoke(e.ctx(who.token), method, req, resp)
					calls++
					code := status.Code(err)
					byCode[code]++
					if who.name == "partner" && err == nil {
						// Nothing of globex's ever reaches acme, whatever it names
						// (its id may come back only as acme's own input, echoed).
						if b, _ := protojson.Marshal(resp); strings.Contains(string(b), `"globex"`) || strings.Contains(string(b), `"rp-g"`) {
							t.Errorf("%s %s=%s: acme's partner got globex's restore: %.300s", md.Name(), f.Name(), mu.name, b)
						}
					}
					if !typed[code] {
						t.Errorf("%s %s=%s as %s: %v (not a typed answer)", md.Name(), f.Name(), mu.name, who.name, err)
						continue
					}
					if err != nil {
						refused++
						// The index may move for the scheduler (placing what
						// accepted creates made): the refused call must not
						// be among what was written since, by the record every
						// entry leaves in the audit log.
						if after := e.commitIndex(); after != before {
							for _, ev := range e.srv.Store().Read(nil).AuditEventsFrom(time.Time{}, func(ev *restorev1.AuditEvent) bool {
								idx, _ := strconv.ParseUint(strings.TrimPrefix(ev.Id, "w-"), 10, 64)
								return strings.HasPrefix(ev.Id, "w-") && idx > before && ev.Method == method
							}, 10) {
								t.Errorf("%s %s=%s as %s was refused (%v) but wrote entry %s (%s)", md.Name(), f.Name(), mu.name, who.name, code, ev.Id, ev.Outcome)
							}
						}
						if msg := status.Convert(err).Message(); msg == "" {
							t.Errorf("%s %s=%s: a refusal without a message", md.Name(), f.Name(), mu.name)
						}
					}
				}
			}
		}
	}
	t.Logf("%d RPCs, %d calls: %d refused with a typed error, %d accepted; by code %v", len(methods), calls, refused, calls-refused, byCode)
	if len(methods) < 40 || calls < 1000 {
		t.Fatalf("the suite reached only %d RPCs with %d calls", len(methods), calls)
	}
}
