// Package hypervisor is the boundary between the agent and the hypervisors
// it drives. It owns the interfaces and their plain data types, nothing
// else: what a restore needs (prepare, boot, observe, tear down, list what
// the host owns: Restorer, Observer) and what a snapshot for a backup job
// needs (take, changed extents, release: Snapshotter). The KVM driver
// (internal/kvm, on the local libvirt) implements them; the VMware and
// Hyper-V drivers implement the same interfaces for remote hosts.
//
// What a driver supports, it declares: Driver.Capabilities returns the set
// of Capability it has (restores, instant restores, screenshots, console,
// guest agent, snapshots, quiesce, changed blocks). The agent asks the set
// before it calls an optional part, reports the set with its host, and a
// request its host cannot serve is refused with the capability's name
// (ErrUnsupported), never half done.
//
// Remote hosts and long-running work: every method takes a context and
// must return when it ends (a vSphere task is cancelled, a PowerShell run
// killed); a driver holds no lock across a call that may block. Work that
// takes minutes (copying or attaching disks) reports progress through
// RestoreSpec.Progress. Ids are Restored's own (restore and snapshot ids,
// UUIDs): a driver derives its VM and checkpoint names from them and finds
// its own objects again after a restart (Owned, EndStale), so the agent's
// truth is the hypervisor itself.
//
// What it must not do: hold logic. Decisions are the agent's (what to do)
// and the drivers' (how); this package is the contract between them.
package hypervisor
