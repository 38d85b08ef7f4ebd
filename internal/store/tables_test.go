package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
)

// fill sets every string field of m (and of the messages it holds, two
// levels down) to a value derived from its name, so that every index finds
// its key.
func fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.IsList() || fd.IsMap() || fd.ContainingOneof() != nil:
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString("v-"+string(fd.Name())))
		case fd.Kind() == protoreflect.MessageKind && depth < 2:
			fill(m.Mutable(fd).Message(), depth+1)
		}
	}
}

// Every field of the raft Snapshot message is a table (but the applied
// index, where the event log starts): an object put in any field is loaded
// into the store and written back out unchanged. A field no table claims
// would come back empty and fail here.
func TestEverySnapshotFieldIsWrittenAndReadBack(t *testing.T) {
	in := &raftv1.Snapshot{AppliedIndex: 42}
	fields := in.ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "applied_index" {
			continue
		}
		if !fd.IsList() || fd.Message() == nil {
			t.Fatalf("Snapshot.%s is not a repeated message: every field of the snapshot must be a table", fd.Name())
		}
		list := in.ProtoReflect().Mutable(fd).List()
		el := list.NewElement()
		fill(el.Message(), 0)
		list.Append(el)
	}
	db, err := Load(in)
	if err != nil {
		t.Fatal(err)
	}
	out := (&Store{db: db, abandon: make(chan struct{})}).Read(nil).Dump()
	if diff := cmp.Diff(in, out, protocmp.Transform()); diff != "" {
		t.Fatalf("not every snapshot field came back (-in +out):\n%s", diff)
	}
	if len(tables) != fields.Len()-1 {
		t.Fatalf("%d tables for %d snapshot fields", len(tables), fields.Len())
	}
}

func TestEveryTableIsInTheSchemaWithAnIDIndex(t *testing.T) {
	s := Schema()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, name := range TableNames() {
		ts, ok := s.Tables[name]
		if !ok || ts.Indexes["id"] == nil || !ts.Indexes["id"].Unique {
			t.Errorf("table %s has no unique id index", name)
		}
	}
}
