package fsm

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
	"github.com/restored/restored/internal/store"
	"github.com/restored/restored/internal/version"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Result is what Apply returns for one entry.
type Result struct {
	Value proto.Message
	Err   error
}

// applyFunc applies one decoded command inside txn.
type applyFunc func(txn *store.Txn, payload []byte, index uint64) (proto.Message, error)

// command is what the FSM knows of one command type.
type command struct {
	apply applyFunc
	// skippable is written into every entry of the type: a server that does
	// not know the type (an older version) may skip it. Only a command an
	// older server can do without, at the price of reads that differ while
	// the cluster is upgraded, may say so.
	skippable bool
	// unaudited: the entry is bookkeeping no one asked for (last-used
	// times), kept out of the audit log.
	unaudited bool
}

// commands maps each command type to how it is applied. Numbers are never
// reused.
var commands = map[raftv1.CommandType]command{
	raftv1.CommandType_COMMAND_TYPE_CREATE_TENANT:              {apply: applyCreateTenant},
	raftv1.CommandType_COMMAND_TYPE_CREATE_TOKEN:               {apply: applyCreateToken},
	raftv1.CommandType_COMMAND_TYPE_REVOKE_TOKEN:               {apply: applyRevokeToken},
	raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORE:             {apply: applyCreateRestore},
	raftv1.CommandType_COMMAND_TYPE_CREATE_RESTORES:            {apply: applyCreateRestores},
	raftv1.CommandType_COMMAND_TYPE_PROMOTE_RESTORE:            {apply: applyPromoteRestore},
	raftv1.CommandType_COMMAND_TYPE_CANCEL_PROMOTION:           {apply: applyCancelPromotion},
	raftv1.CommandType_COMMAND_TYPE_DELETE_RESTORE:             {apply: applyDeleteRestore},
	raftv1.CommandType_COMMAND_TYPE_REGISTER_HOST:              {apply: applyRegisterHost},
	raftv1.CommandType_COMMAND_TYPE_SET_HOST_DRAIN:             {apply: applySetHostDrain},
	raftv1.CommandType_COMMAND_TYPE_SET_HOST_STATE:             {apply: applySetHostState},
	raftv1.CommandType_COMMAND_TYPE_REPORT_RECOVERY_POINTS:     {apply: applyReportRecoveryPoints},
	raftv1.CommandType_COMMAND_TYPE_REPORT_RESTORE_STATUS:      {apply: applyReportRestoreStatus},
	raftv1.CommandType_COMMAND_TYPE_PLACE_RESTORES:             {apply: applyPlaceRestores},
	raftv1.CommandType_COMMAND_TYPE_EXPIRE_RESTORES:            {apply: applyExpireRestores},
	raftv1.CommandType_COMMAND_TYPE_REGISTER_SERVER:            {apply: applyRegisterServer},
	raftv1.CommandType_COMMAND_TYPE_SET_VERIFICATION_POLICY:    {apply: applySetVerificationPolicy},
	raftv1.CommandType_COMMAND_TYPE_DELETE_VERIFICATION_POLICY: {apply: applyDeleteVerificationPolicy},
	raftv1.CommandType_COMMAND_TYPE_REGISTER_GUEST:             {apply: applyRegisterGuest},
	raftv1.CommandType_COMMAND_TYPE_UNREGISTER_GUEST:           {apply: applyUnregisterGuest},
	raftv1.CommandType_COMMAND_TYPE_PRUNE_VERIFICATIONS:        {apply: applyPruneVerifications},
	raftv1.CommandType_COMMAND_TYPE_CREATE_SNAPSHOT:            {apply: applyCreateSnapshot},
	raftv1.CommandType_COMMAND_TYPE_REPORT_SNAPSHOT_STATUS:     {apply: applyReportSnapshotStatus},
	raftv1.CommandType_COMMAND_TYPE_RELEASE_SNAPSHOTS:          {apply: applyReleaseSnapshots},
	raftv1.CommandType_COMMAND_TYPE_PRUNE:                      {apply: applyPrune},
	raftv1.CommandType_COMMAND_TYPE_CREATE_JOIN_TOKEN:          {apply: applyCreateJoinToken},
	raftv1.CommandType_COMMAND_TYPE_USE_JOIN_TOKEN:             {apply: applyUseJoinToken},
	raftv1.CommandType_COMMAND_TYPE_REMOVE_HOST:                {apply: applyRemoveHost},
	raftv1.CommandType_COMMAND_TYPE_REPORT_INVENTORY:           {apply: applyReportInventory},
	raftv1.CommandType_COMMAND_TYPE_LINK_UP_RESTORE:            {apply: applyLinkUpRestore},
	raftv1.CommandType_COMMAND_TYPE_ROTATE_TOKEN:               {apply: applyRotateToken},
	raftv1.CommandType_COMMAND_TYPE_TOUCH_TOKENS:               {apply: applyTouchTokens, skippable: true, unaudited: true},
	raftv1.CommandType_COMMAND_TYPE_SET_TENANT_QUOTA:           {apply: applySetTenantQuota},
}

// Halt says why the FSM stopped applying the log: an entry it may not skip
// and cannot apply (a command of a newer version).
type Halt struct {
	Index uint64
	Type  raftv1.CommandType
}

func (h *Halt) Error() string {
	return fmt.Sprintf("this server stopped applying the raft log at index %d: command type %d is unknown to this version (%s) and may not be skipped; upgrade this server", h.Index, h.Type, version.Version)
}

var _ raft.BatchingFSM = (*FSM)(nil)

// FSM is the raft state machine over a store.
type FSM struct {
	store  *store.Store
	log    *slog.Logger
	halted atomic.Pointer[Halt]
}

// Halted returns why the FSM stopped applying the log, or nil.
func (f *FSM) Halted() *Halt { return f.halted.Load() }

// New returns an FSM writing to st.
func New(st *store.Store, log *slog.Logger) *FSM {
	return &FSM{store: st, log: log}
}

// Encode wraps a command into a raft log entry.
func Encode(t raftv1.CommandType, msg proto.Message) ([]byte, error) { return EncodeAs(t, msg, nil) }

// EncodeAs is Encode with who proposes the entry, for its audit record.
func EncodeAs(t raftv1.CommandType, msg proto.Message, ac *raftv1.AuditContext) ([]byte, error) {
	payload, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return proto.Marshal(&raftv1.Envelope{Type: t, Payload: payload, Skippable: commands[t].skippable, Audit: ac})
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.ApplyEntry(l.Data, l.Index)
}

// ApplyEntry applies one encoded envelope at index in its own transaction.
func (f *FSM) ApplyEntry(data []byte, index uint64) *Result {
	txn := f.store.WriteTxn()
	defer txn.Abort()
	res, clean := f.applyEntry(txn, data, index)
	if clean {
		txn.Commit()
	}
	return res
}

// ApplyBatch implements raft.BatchingFSM: a batch of committed entries is
// applied in one memdb transaction, which shares the copying of index nodes
// and wakes watchers once. Apply functions check before they write, so a
// rejected command (a status error) has written nothing and the batch goes
// on. If an entry fails in any other way (a panic, a write error), the whole
// transaction is dropped and the batch is applied entry by entry instead:
// the result is the same as applying one entry at a time, whatever the batch
// boundaries, so every replica ends in the same state.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	txn := f.store.WriteTxn()
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		res, clean := f.applyEntry(txn, l.Data, l.Index)
		if !clean {
			txn.Abort()
			for j, l := range logs {
				if l.Type == raft.LogCommand {
					out[j] = f.ApplyEntry(l.Data, l.Index)
				}
			}
			return out
		}
		out[i] = res
	}
	txn.Commit()
	return out
}

// applyEntry applies one entry inside txn with the events of its changes.
func (f *FSM) applyEntry(txn *store.Txn, data []byte, index uint64) (*Result, bool) {
	txn.Entry(index)
	res, clean := f.applyIn(txn, data, index)
	if !clean {
		return res, false
	}
	if err := txn.EndEntry(); err != nil {
		f.log.Error("raft apply: event log", "index", index, "err", err)
		return &Result{Err: err}, false
	}
	return res, true
}

// applyIn applies one entry inside txn. clean is false when the entry may
// have left partial writes in txn (the caller must abort it).
func (f *FSM) applyIn(txn *store.Txn, data []byte, index uint64) (res *Result, clean bool) {
	if h := f.halted.Load(); h != nil {
		return &Result{Err: h}, true
	}
	var env raftv1.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		f.log.Error("undecodable raft entry", "index", index, "err", err)
		return &Result{Err: fmt.Errorf("decode entry %d: %w", index, err)}, true
	}
	cmd, ok := commands[env.Type]
	if !ok {
		if env.Skippable {
			// A newer server's entry that older ones may do without.
			f.log.Warn("skipping a raft entry of a newer version", "index", index, "type", env.Type)
			return &Result{Err: fmt.Errorf("unknown command type %d at index %d skipped", env.Type, index)}, true
		}
		// Applying anything after it would let this replica diverge: stop
		// here, say so on every apply, and refuse snapshots until upgraded.
		h := &Halt{Index: index, Type: env.Type}
		f.halted.Store(h)
		f.log.Error("RAFT LOG HALTED: an entry of a newer version cannot be applied or skipped; this server applies nothing more until it is upgraded",
			"index", index, "type", env.Type, "version", version.Version)
		return &Result{Err: h}, true
	}
	defer func() {
		// A bug in one apply function must not take every replica down.
		if p := recover(); p != nil {
			f.log.Error("raft apply panicked; entry skipped", "index", index, "type", env.Type, "panic", p)
			res, clean = &Result{Err: fmt.Errorf("apply %s at index %d panicked: %v", env.Type, index, p)}, false
		}
	}()
	v, err := cmd.apply(txn, env.Payload, index)
	if err != nil {
		if _, isStatus := status.FromError(err); isStatus {
			// A rejection: nothing was written but its audit record.
			if aerr := recordWrite(txn, index, &env, cmd, nil, err); aerr != nil {
				return &Result{Err: aerr}, false
			}
			return &Result{Err: err}, true
		}
		f.log.Error("raft apply failed", "index", index, "type", env.Type, "err", err)
		return &Result{Err: err}, false
	}
	if err := recordWrite(txn, index, &env, cmd, v, nil); err != nil {
		return &Result{Err: err}, false
	}
	return &Result{Value: v}, true
}

// Snapshot implements raft.FSM. A halted FSM refuses: its state lacks the
// entries it did not apply, and raft must keep them in the log.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if h := f.halted.Load(); h != nil {
		return nil, h
	}
	return &fsmSnapshot{snap: f.store.Read(nil).Dump()}, nil
}

// Restore implements raft.FSM: it builds a new database from the snapshot and
// swaps it in.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	var snap raftv1.Snapshot
	if err := proto.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	db, err := BuildDB(&snap)
	if err != nil {
		return err
	}
	f.store.Swap(db)
	// The snapshot holds what the entry this FSM halted at did, if any;
	// what follows it is applied (or halts it) anew.
	f.halted.Store(nil)
	return nil
}

// BuildDB makes a fresh database holding everything in snap.
func BuildDB(snap *raftv1.Snapshot) (*memdb.MemDB, error) { return store.Load(snap) }

type fsmSnapshot struct{ snap *raftv1.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := proto.Marshal(s.snap)
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if _, err := sink.Write(data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
