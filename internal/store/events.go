package store

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/hashicorp/go-memdb"
)

// The event log: every change the FSM makes to a watched table (restores,
// hosts, snapshots, verifications, the audit record) is kept as an event
// with a Version, so a watch that reconnects resumes after the last event
// it got, on any server, without missing or repeating one (Kubernetes watch
// semantics). The log is derived, like the restore counts: it is not in
// raft snapshots, holds the newest EventHistory events of each kind, and after a
// snapshot restore starts at the snapshot's index; a watch from before its
// floor is told so (ErrCompacted) and lists again.

// Kind is the kind of object a watch follows.
type Kind int

// The watched kinds.
const (
	KindRestore Kind = iota + 1
	KindHost
	KindSnapshot
	KindVerification
	KindAudit
)

// EventType says what happened to an event's object.
type EventType int

// Event types.
const (
	EventAdded EventType = iota + 1
	EventModified
	EventDeleted
)

// Version is a point in the history of the state: the raft index of an
// entry and the position of a change within it. Versions are the same on
// every server (they come from the log), so a watch may resume on another.
type Version uint64

// ordinalBits of a Version number the changes of one entry.
const ordinalBits = 20

// maxOrdinal is the last change of an entry a Version can name.
const maxOrdinal = 1<<ordinalBits - 1

// Through is the version of everything entry index did: a watch from it
// gets the changes of later entries only.
func Through(index uint64) Version { return Version(index<<ordinalBits | maxOrdinal) }

// Index is the raft index of the entry the change was made by.
func (v Version) Index() uint64 { return uint64(v) >> ordinalBits }

// String is the version as clients see it (resource_version).
func (v Version) String() string { return strconv.FormatUint(uint64(v), 10) }

// ParseVersion reads a resource_version a client sends back.
func ParseVersion(s string) (Version, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resource_version %q is not one this service gave (a decimal number from a list or an event)", s)
	}
	return Version(n), nil
}

// EventHistory is how many events of each kind the log keeps (a variable
// for tests).
var EventHistory = 100_000

// kinds is one more than the last Kind: the size of per-kind arrays.
const kinds = int(KindAudit) + 1

// ErrCompacted: a watch asked for events older than the log holds.
var ErrCompacted = errors.New("events before this resource_version are no longer kept")

// Event is one change of one object.
type Event struct {
	Version Version
	Kind    Kind
	Type    EventType
	// Object is the object after the change (before it, for EventDeleted).
	Object any
}

const (
	tableEvents    = "events"
	tableEventMeta = "event_meta"
)

// eventMeta is the log's one bookkeeping row.
type eventMeta struct {
	ID string
	// Applied is the index of the last entry applied into the state.
	Applied uint64
	// Floor, of each kind: its events at or before it are not kept.
	Floor [kinds]Version
	// N, of each kind: how many of its events are kept.
	N [kinds]int
}

const metaID = "log"

func eventSchemas() []*memdb.TableSchema {
	return []*memdb.TableSchema{
		// One index, by kind and version: each event is written into one
		// radix tree only.
		{Name: tableEvents, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.IntFieldIndex{Field: "Kind"}, &memdb.UintFieldIndex{Field: "Version"},
			}}},
		}},
		{Name: tableEventMeta, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
	}
}

func meta(txn *memdb.Txn) eventMeta {
	if m, err := txn.First(tableEventMeta, "id", metaID); err == nil && m != nil {
		return *m.(*eventMeta)
	}
	return eventMeta{ID: metaID}
}

// AppliedVersion is the version of the state this Reader sees: a list
// read with it and a watch from it see every change exactly once.
func (r *Reader) AppliedVersion() Version { return Through(meta(r.txn).Applied) }

// AppliedIndex is the index of the last entry applied into this state.
func (r *Reader) AppliedIndex() uint64 { return meta(r.txn).Applied }

// EventsAfter returns up to limit events of kind after v, oldest first,
// adding the log's channel to the Reader's watch set. It is ErrCompacted
// when events after v may have been dropped.
func (r *Reader) EventsAfter(kind Kind, v Version, limit int) ([]Event, error) {
	if floor := meta(r.txn).Floor[kind]; v < floor {
		return nil, fmt.Errorf("%w (resource_version %s; the oldest kept is after %s)", ErrCompacted, v, floor)
	}
	if r.ws != nil {
		if it, err := r.txn.Get(tableEvents, "id"); err == nil {
			r.ws.Add(it.WatchCh())
		}
	}
	it, err := r.txn.LowerBound(tableEvents, "id", int(kind), uint64(v)+1)
	if err != nil {
		return nil, err
	}
	var out []Event
	for o := it.Next(); o != nil && len(out) < limit; o = it.Next() {
		ev := o.(*Event)
		if ev.Kind != kind {
			break
		}
		out = append(out, *ev)
	}
	return out, nil
}

// loadEventLog starts the log of a state loaded from a snapshot of entry
// index (0: a snapshot of an older version, which did not say).
func loadEventLog(txn *memdb.Txn, index uint64) error {
	m := &eventMeta{ID: metaID, Applied: index}
	for k := range m.Floor {
		m.Floor[k] = Through(index)
	}
	return txn.Insert(tableEventMeta, m)
}

// Txn is the FSM's write transaction: memdb's, with each change to a
// watched table kept as an event of the entry being applied, and the
// tenants' usage kept in step with their restores and snapshots
// (quota.go). Call Entry before an entry's writes and EndEntry after them.
type Txn struct {
	*memdb.Txn
	index uint64
	// meta is the log's bookkeeping as this transaction left it (nil: not
	// read yet); Commit writes it, once for a whole batch.
	meta *eventMeta
	// pending holds this entry's events, one per object (its last state).
	pending map[pendingKey]*Event
	order   []pendingKey
}

type pendingKey struct {
	kind Kind
	id   string
}

// WriteTxn opens a write transaction on the current database. Only the FSM
// calls it.
func (s *Store) WriteTxn() *Txn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &Txn{Txn: s.db.Txn(true)}
}

// Entry begins the writes of the entry at index.
func (t *Txn) Entry(index uint64) {
	t.index = index
	clear(t.pending)
	t.order = t.order[:0]
}

// Insert stores obj in table, keeping the change as an event when table is
// watched, and its tenant's usage in step when it is a restore or a
// snapshot.
func (t *Txn) Insert(table string, obj any) error {
	k, usage := watched[table], usageTables[table]
	if k == 0 && !usage {
		return t.Txn.Insert(table, obj)
	}
	typ := EventAdded
	prev, err := t.Txn.First(table, "id", objectID(obj))
	if err != nil {
		return err
	} else if prev != nil {
		typ = EventModified
	}
	if err := t.Txn.Insert(table, obj); err != nil {
		return err
	}
	if usage {
		if err := adjustUsage(t.Txn, prev, obj); err != nil {
			return err
		}
	}
	if k != 0 {
		t.note(k, typ, obj)
	}
	return nil
}

// Delete removes obj from table, keeping the change as an event when
// table is watched (the audit record's retention is not news).
func (t *Txn) Delete(table string, obj any) error {
	if err := t.Txn.Delete(table, obj); err != nil {
		return err
	}
	if usageTables[table] {
		if err := adjustUsage(t.Txn, obj, nil); err != nil {
			return err
		}
	}
	if k := watched[table]; k != 0 && k != KindAudit {
		t.note(k, EventDeleted, obj)
	}
	return nil
}

// note folds a change into this entry's event of the same object: the
// event carries its last state, in the place of its first change.
func (t *Txn) note(k Kind, typ EventType, obj any) {
	key := pendingKey{k, objectID(obj)}
	if t.pending == nil {
		t.pending = map[pendingKey]*Event{}
	}
	ev, ok := t.pending[key]
	if !ok {
		t.pending[key] = &Event{Kind: k, Type: typ, Object: obj}
		t.order = append(t.order, key)
		return
	}
	ev.Object = obj
	switch {
	case ev.Type == EventAdded && typ == EventDeleted:
		ev.Type = 0 // made and gone within the entry: nothing to tell
	case ev.Type == 0 && typ == EventAdded:
		ev.Type = EventAdded
	case typ == EventDeleted:
		ev.Type = EventDeleted
	case ev.Type == EventDeleted && typ == EventAdded:
		ev.Type = EventModified
	}
}

// EndEntry writes the entry's events and its index, and drops the oldest
// events beyond EventHistory.
func (t *Txn) EndEntry() error {
	if t.meta == nil {
		m := meta(t.Txn)
		t.meta = &m
	}
	m := t.meta
	m.Applied = t.index
	ord := 0
	for _, key := range t.order {
		ev := t.pending[key]
		if ev.Type == 0 {
			continue
		}
		if ord > maxOrdinal {
			return fmt.Errorf("entry %d changed more than %d watched objects", t.index, maxOrdinal)
		}
		ev.Version = Version(t.index<<ordinalBits | uint64(ord))
		ord++
		if err := t.Txn.Insert(tableEvents, ev); err != nil {
			return err
		}
		m.N[ev.Kind]++
	}
	for k := range m.N {
		for m.N[k] > EventHistory {
			it, err := t.Txn.LowerBound(tableEvents, "id", k, uint64(0))
			if err != nil {
				return err
			}
			o := it.Next()
			if o == nil || o.(*Event).Kind != Kind(k) {
				return fmt.Errorf("event log: %d events of kind %d counted but the oldest is missing", m.N[k], k)
			}
			if err := t.Txn.Delete(tableEvents, o); err != nil {
				return err
			}
			m.Floor[k], m.N[k] = o.(*Event).Version, m.N[k]-1
		}
	}
	t.Entry(0)
	return nil
}

// Commit writes the log's bookkeeping and commits the transaction.
func (t *Txn) Commit() {
	if t.meta != nil {
		m := *t.meta
		if err := t.Txn.Insert(tableEventMeta, &m); err != nil {
			// The schema has the table: only a bug gets here.
			panic(fmt.Sprintf("store: write the event log's bookkeeping: %v", err))
		}
	}
	t.Txn.Commit()
}

// objectID is a watched object's id (every one has GetId).
func objectID(obj any) string {
	if o, ok := obj.(interface{ GetId() string }); ok {
		return o.GetId()
	}
	panic(fmt.Sprintf("store: a watched or usage table holds %T, which has no id", obj))
}
