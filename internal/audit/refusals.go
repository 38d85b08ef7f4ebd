package audit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// maxRefusals bounds what a server keeps in memory (the oldest go first).
const maxRefusals = 100000

// Refusals is the record of the calls this server refused before raft:
// appended to <data-dir>/audit/refusals.jsonl and read back at start.
type Refusals struct {
	serverID  string
	retention time.Duration
	path      string

	mu     sync.Mutex
	f      *os.File
	events []*restorev1.AuditEvent
	seq    int64
}

// OpenRefusals opens (or starts) a server's refusal log in dir.
func OpenRefusals(dir, serverID string, retention time.Duration) (*Refusals, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &Refusals{serverID: serverID, retention: retention, path: filepath.Join(dir, "refusals.jsonl")}
	if b, err := os.Open(r.path); err == nil {
		sc := bufio.NewScanner(b)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev restorev1.AuditEvent
			if protojson.Unmarshal(sc.Bytes(), &ev) == nil {
				r.events = append(r.events, &ev)
				r.seq++
			}
		}
		b.Close()
	}
	r.prune(time.Now())
	// Rewrite what is kept, then append.
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	for _, ev := range r.events {
		b, _ := protojson.Marshal(ev)
		fmt.Fprintf(f, "%s\n", b)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return nil, err
	}
	if r.f, err = os.OpenFile(r.path, os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Refusals) prune(now time.Time) {
	keep := r.events[:0]
	for _, ev := range r.events {
		if r.retention <= 0 || ev.GetTime().AsTime().After(now.Add(-r.retention)) {
			keep = append(keep, ev)
		}
	}
	r.events = keep
	if over := len(r.events) - maxRefusals; over > 0 {
		r.events = r.events[over:]
	}
}

// Record keeps a refusal (it gets its id here).
func (r *Refusals) Record(ev *restorev1.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	ev.Id = fmt.Sprintf("r-%s-%012d", r.serverID, r.seq)
	r.events = append(r.events, ev)
	if len(r.events) > maxRefusals+maxRefusals/10 {
		r.prune(time.Now())
	}
	if r.f != nil {
		b, _ := protojson.Marshal(ev)
		fmt.Fprintf(r.f, "%s\n", b)
	}
}

// List returns the refusals that match f, oldest first.
func (r *Refusals) List(f Filter) []*restorev1.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*restorev1.AuditEvent
	for _, ev := range r.events {
		if f.Match(ev) {
			out = append(out, proto.Clone(ev).(*restorev1.AuditEvent))
		}
	}
	return out
}

// Close closes the log.
func (r *Refusals) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
