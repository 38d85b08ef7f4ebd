// Package nbd is Restored's Network Block Device code: the TLS Gate in front
// of a host's snapshot exports, a read-only Server of any reader (a VMware
// snapshot's disks, read from the datastore), and a small client for the
// protocol
// (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md), the
// way backup jobs read a snapshot's disks: fixed newstyle handshake,
// structured replies, metadata contexts (base:allocation and QEMU's
// qemu:dirty-bitmap:*), reads, writes and block status.
//
// There is no NBD client in the Go module proxy here, and driving qemu-img
// or nbdinfo cannot count the bytes read or read only a dirty bitmap's
// extents, which is the point of an incremental. The client sends one request
// at a time on one connection; that is enough to fill loopback.
package nbd
