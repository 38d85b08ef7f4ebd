// Package vmware is the VMware driver, on govmomi. Driver is the vSphere
// API as Restored uses it: login with a pinned CA, Changed Block Tracking,
// snapshots (quiesced when asked, reporting what vSphere says it got),
// QueryChangedDiskAreas since a change id, and reads of datastore files
// through the vCenter's file service (ranged GETs, no proprietary library).
// Host is a vCenter cluster as the agent's hypervisor (the
// hypervisor.Driver, Snapshotter, Restorer and Observer boundary): its
// capacity and VMs, and snapshots for backup jobs whose disks it serves as
// NBD (internal/nbd.Server) behind the agent's gate.
//
// Tests run against govmomi's vcsim as a process (internal/testvcsim);
// vcsim does not implement QueryChangedDiskAreas, so that call is tested
// with responses in vSphere's wire format (testdata/, and the proxy of
// testvcsim), and says so. docs/vmware.md has what is proven and what a
// first real run must check.
package vmware
