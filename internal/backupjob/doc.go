// Package backupjob is Restored's reference backup job: it asks the control
// plane for a snapshot of a protected guest, reads the snapshot's disks over
// NBD (for an incremental, only the changed extents), writes a new recovery
// point into a repository — a FULL as a qcow2, an INCREMENTAL as a qcow2 on
// top of the previous recovery point — and releases the snapshot.
//
// Reading uses Restored's own NBD client (internal/nbd), which counts the
// bytes read. Writing goes through qemu-nbd serving the new qcow2 on a unix
// socket, so QEMU's own qcow2 code lays out the image and its backing link.
package backupjob
