package lifecycle

import (
	"fmt"
	"strings"
)

// Cause is who may cause a transition.
type Cause uint8

// The causes.
const (
	// ByAPI is a caller's request (create, delete).
	ByAPI Cause = 1 << iota
	// ByScheduler is the leader's scheduler: placement, a host gone down,
	// a verification policy's run.
	ByScheduler
	// ByAgent is a report of the host's agent.
	ByAgent
	// ByLease is a lease that ran out.
	ByLease
)

func (c Cause) String() string {
	var parts []string
	for _, x := range []struct {
		c    Cause
		name string
	}{{ByAPI, "api"}, {ByScheduler, "scheduler"}, {ByAgent, "agent"}, {ByLease, "lease"}} {
		if c&x.c != 0 {
			parts = append(parts, x.name)
		}
	}
	if len(parts) == 0 {
		return "nobody"
	}
	return strings.Join(parts, "|")
}

// Transition is one row of a lifecycle table: From may become To when By
// causes it.
type Transition[S comparable] struct {
	From, To S
	By       Cause
	// Keep: the change is taken (its facts are recorded) but the state
	// stays From; To is only what was asked or reported.
	Keep bool
	// TornDown: afterwards nothing of it is left on a host.
	TornDown bool
}

// Moves says whether the state changes.
func (t Transition[S]) Moves() bool { return !t.Keep && t.From != t.To }

// After is the state after the transition.
func (t Transition[S]) After() S {
	if t.Keep {
		return t.From
	}
	return t.To
}

type edge[S comparable] struct{ from, to S }

// Table is a lifecycle's transition table.
type Table[S comparable] struct {
	rows  []Transition[S]
	index map[edge[S]][]Transition[S]
}

func newTable[S comparable](rows []Transition[S]) *Table[S] {
	t := &Table[S]{rows: rows, index: map[edge[S]][]Transition[S]{}}
	for _, r := range rows {
		e := edge[S]{r.From, r.To}
		for _, other := range t.index[e] {
			if other.By&r.By != 0 {
				panic(fmt.Sprintf("lifecycle: two rows for %v -> %v by %s", r.From, r.To, other.By&r.By))
			}
		}
		t.index[e] = append(t.index[e], r)
	}
	return t
}

// Lookup returns the row that lets by change from into to.
func (t *Table[S]) Lookup(from, to S, by Cause) (Transition[S], bool) {
	for _, r := range t.index[edge[S]{from, to}] {
		if r.By&by != 0 {
			return r, true
		}
	}
	return Transition[S]{}, false
}

// Rows returns every row, in table order.
func (t *Table[S]) Rows() []Transition[S] { return append([]Transition[S](nil), t.rows...) }

// Leaves says whether any row moves a thing out of state s.
func (t *Table[S]) Leaves(s S) bool {
	for _, r := range t.rows {
		if r.From == s && r.Moves() {
			return true
		}
	}
	return false
}

// Reachable says whether some row lets by cause a change to s.
func (t *Table[S]) Reachable(s S, by Cause) bool {
	for _, r := range t.rows {
		if r.To == s && r.By&by != 0 {
			return true
		}
	}
	return false
}
