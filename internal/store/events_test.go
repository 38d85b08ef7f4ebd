package store

import (
	"errors"
	"fmt"
	"testing"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	raftv1 "github.com/restored/restored/internal/gen/raft/v1"
)

// entry applies one raft entry's writes through the FSM's transaction.
func entry(t *testing.T, s *Store, index uint64, writes func(*Txn) error) {
	t.Helper()
	txn := s.WriteTxn()
	defer txn.Abort()
	txn.Entry(index)
	if err := writes(txn); err != nil {
		t.Fatal(err)
	}
	if err := txn.EndEntry(); err != nil {
		t.Fatal(err)
	}
	txn.Commit()
}

func host(id, state string) *restorev1.Host {
	return &restorev1.Host{Id: id, Accelerator: state}
}

func summary(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d.%d %d %s %s", ev.Version.Index(), uint64(ev.Version)&maxOrdinal, ev.Type,
			objectID(ev.Object), ev.Object.(*restorev1.Host).GetAccelerator()))
	}
	return out
}

func TestChangesOfOneEntryFoldIntoOneEventPerObjectInTheOrderFirstChanged(t *testing.T) {
	s, _ := New()
	entry(t, s, 7, func(tx *Txn) error {
		for _, w := range []func() error{
			func() error { return tx.Insert(TableHosts, host("b", "1")) },
			func() error { return tx.Insert(TableHosts, host("a", "1")) },
			func() error { return tx.Insert(TableHosts, host("b", "2")) }, // b: still ADDED, its last state
			func() error { return tx.Insert(TableHosts, host("gone", "1")) },
			func() error { return tx.Delete(TableHosts, host("gone", "1")) },            // made and gone: no event
			func() error { return tx.Insert(TableTenants, &restorev1.Tenant{Id: "t"}) }, // not watched
		} {
			if err := w(); err != nil {
				return err
			}
		}
		return nil
	})
	entry(t, s, 8, func(tx *Txn) error {
		if err := tx.Insert(TableHosts, host("a", "2")); err != nil {
			return err
		}
		return tx.Delete(TableHosts, host("b", "2"))
	})
	evs, err := s.Read(nil).EventsAfter(KindHost, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(summary(evs))
	want := fmt.Sprint([]string{
		fmt.Sprintf("7.0 %d b 2", EventAdded), fmt.Sprintf("7.1 %d a 1", EventAdded),
		fmt.Sprintf("8.0 %d a 2", EventModified), fmt.Sprintf("8.1 %d b 2", EventDeleted),
	})
	if got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	if v := s.Read(nil).AppliedVersion(); v != Through(8) || v.Index() != 8 {
		t.Fatalf("applied version %s (index %d), want through entry 8", v, v.Index())
	}
}

func TestAWatchResumedAfterAnyEventGetsEveryLaterEventOnce(t *testing.T) {
	s, _ := New()
	for i := uint64(1); i <= 20; i++ {
		entry(t, s, i, func(tx *Txn) error {
			if err := tx.Insert(TableHosts, host(fmt.Sprint("h", i%3), fmt.Sprint(i))); err != nil {
				return err
			}
			if i%4 == 0 { // other kinds in between
				return tx.Insert(TableRestores, &restorev1.Restore{Id: fmt.Sprint("r", i)})
			}
			return nil
		})
	}
	all, err := s.Read(nil).EventsAfter(KindHost, 0, 1000)
	if err != nil || len(all) != 20 {
		t.Fatalf("%d host events (%v), want 20", len(all), err)
	}
	for k := range all {
		// Resuming in pages of 3 from event k sees exactly all[k+1:].
		var got []Event
		from := all[k].Version
		for {
			page, err := s.Read(nil).EventsAfter(KindHost, from, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			from = page[len(page)-1].Version
		}
		if fmt.Sprint(summary(got)) != fmt.Sprint(summary(all[k+1:])) {
			t.Fatalf("resumed after %s:\n got %v\nwant %v", all[k].Version, summary(got), summary(all[k+1:]))
		}
	}
	rs, _ := s.Read(nil).EventsAfter(KindRestore, 0, 1000)
	if len(rs) != 5 {
		t.Fatalf("%d restore events, want 5", len(rs))
	}
}

func TestTheLogKeepsTheNewestEventsAndRefusesAWatchFromBeforeThem(t *testing.T) {
	defer func(n int) { EventHistory = n }(EventHistory)
	EventHistory = 5
	s, _ := New()
	for i := uint64(1); i <= 8; i++ {
		entry(t, s, i, func(tx *Txn) error { return tx.Insert(TableHosts, host("h", fmt.Sprint(i))) })
	}
	r := s.Read(nil)
	kept, err := r.EventsAfter(KindHost, Through(3), 100)
	if err != nil || len(kept) != 5 || kept[0].Version.Index() != 4 {
		t.Fatalf("after entry 3: %v (%v), want entries 4-8", summary(kept), err)
	}
	if _, err := r.EventsAfter(KindHost, Through(2), 100); !errors.Is(err, ErrCompacted) {
		t.Fatalf("a watch from entry 2, whose successor was dropped: %v, want ErrCompacted", err)
	}
}

func TestASnapshotStartsTheLogAtItsIndex(t *testing.T) {
	db, err := Load(&raftv1.Snapshot{AppliedIndex: 50, Hosts: []*restorev1.Host{host("h", "1")}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{db: db, abandon: make(chan struct{})}
	if v := s.Read(nil).AppliedVersion(); v != Through(50) {
		t.Fatalf("applied version %s, want through 50", v)
	}
	if _, err := s.Read(nil).EventsAfter(KindHost, Through(49), 10); !errors.Is(err, ErrCompacted) {
		t.Fatalf("a watch from before the snapshot: %v, want ErrCompacted (it must list again)", err)
	}
	entry(t, s, 51, func(tx *Txn) error { return tx.Insert(TableHosts, host("h", "2")) })
	evs, err := s.Read(nil).EventsAfter(KindHost, Through(50), 10)
	if err != nil || len(evs) != 1 || evs[0].Type != EventModified {
		t.Fatalf("after the snapshot: %v (%v), want h MODIFIED", summary(evs), err)
	}
}

func TestAResourceVersionIsADecimalNumber(t *testing.T) {
	for _, bad := range []string{"x", "-1", "1.5", "18446744073709551616"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if v, err := ParseVersion(Through(9).String()); err != nil || v != Through(9) {
		t.Fatalf("round trip: %v %v", v, err)
	}
}
