// Package lifecycle owns the restore and snapshot lifecycles: their states,
// the transition tables that say which change may happen and who may cause
// it (a caller through the API, the leader's scheduler, the host's agent, a
// lease), what each state means for its host (active, holds capacity, needs
// teardown), the capacity arithmetic of placement, and the constructor of a
// new restore with its defaults. Every other package asks it; none of them
// spells a state rule again.
//
// Restore lifecycle (A = API, S = scheduler, G = agent report, L = lease):
//
//	            A,S create                 S place
//	(new) ──────────────────► PENDING ─────────────────► SCHEDULED
//	  │                         │  │                         │ G
//	  │ A,S create (placed)     │  │ A delete                ▼
//	  └───────────────────────► │  └──► DESTROYED ◄──┐    PREPARING ◄─┐
//	                            │ L                  │       │ G      │ G (the VM
//	                            ▼                    │       ▼        │  vanished
//	                         EXPIRED ◄── L ──┐       │    BOOTING     │  unseen: boot again)
//	                                         │       │       │ G      │
//	   S host down (VERIFY: placed again) ───┼───────┼───────▼────────┘
//	   PENDING ◄──── SCHEDULED … RUNNING ────┤       │    RUNNING
//	                                         │       │       │ A delete
//	   S host down (VIRTUALIZE) ─► LOST      │       │       ▼
//	                                         └───────┼─── STOPPING
//	   G FAILED / DESTROYED from SCHEDULED …         │       │ G torn down
//	   RUNNING or STOPPING ─► FAILED / DESTROYED     └───────┘
//
// FAILED, EXPIRED and LOST restores on a host keep their state when the
// agent reports the teardown: the state says why it ended, the report only
// adds that the VM is gone (destroy_time). DESTROYED, FAILED, EXPIRED and
// LOST are terminal.
//
// Snapshot lifecycle (the release asked by a caller, a lease or a restarted
// agent is a flag, release_requested, not a state):
//
//	(new) ─A─► REQUESTED ─G─► PREPARING ─G─► READY ─G─► RELEASED
//	              │ G            │ G           │ G
//	              └──────────────┴─────────────┴──────► FAILED
//
// A late report never moves a snapshot back (PREPARING after READY is
// taken and ignored); RELEASED and FAILED are terminal.
//
// What it must not do: read the store, the clock or anything but the
// objects it is given; its answers are pure, so the FSM can use them.
package lifecycle
