// Package agent is the hypervisor agent: it registers its host with the
// control plane, heartbeats, reports the recovery points of its repository,
// and makes the host's hypervisor match what the control plane assigns.
//
// It is made of parts that each own their own state, with no lock shared
// between them:
//   - restores (restores.go, boot.go, watch.go): boots what must run from
//     the repository's chains, watches the boot signal, tears down what must
//     go, removes what nothing owns; the work in flight is its state;
//   - verifications (verification.go, checks.go, guest.go): a VERIFY run's
//     checks and evidence, one verdict; no state between runs;
//   - snapshots (snapshots.go): takes, serves and releases snapshots for
//     backup jobs; what this run serves is its state;
//   - tunnel (tunnel.go): serves screenshots, evidence, consoles and extents
//     on the channels the server opens;
//   - the catalog of recovery points (a scan's storage.Index) and the
//     control plane's client (control.go), each swapped atomically.
//
// The parts reach the hypervisor only through internal/hypervisor's
// interfaces (the KVM driver in production, a fake in the unit tests) and
// ask its capabilities before optional work. The agent's truth about what
// runs is the hypervisor itself: a restarted agent lists what the host owns
// and adopts what is wanted, removing the rest.
//
// What it must not do: decide a restore's lifecycle (the control plane
// does, internal/lifecycle), resolve a recovery point's backing chain
// (internal/storage does), or build a domain (internal/vmspec does).
package agent
