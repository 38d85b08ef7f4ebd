// Package revert is a cleanup stack for multi-step host changes (after
// Incus's shared/revert): r := revert.New(); defer r.Fail(); r.Add(undo)
// after each step; r.Success() at the end. On failure the undo steps run in
// reverse order.
package revert

// Reverter holds undo steps.
type Reverter struct {
	steps []func()
	done  bool
}

// New returns an empty reverter.
func New() *Reverter { return &Reverter{} }

// Add pushes an undo step.
func (r *Reverter) Add(undo func()) { r.steps = append(r.steps, undo) }

// Fail runs every undo step, newest first, unless Success was called.
func (r *Reverter) Fail() {
	if r.done {
		return
	}
	r.done = true
	for i := len(r.steps) - 1; i >= 0; i-- {
		r.steps[i]()
	}
}

// Success keeps every change: Fail does nothing afterwards.
func (r *Reverter) Success() { r.done = true }
