// Package storage owns the repository of recovery points on a host: its
// layout (<root>/<tenant>/<asset>/<recovery-point-id>/manifest.json plus the
// disk files the manifest names), manifest parsing, and validation that is
// safe against hostile images.
//
// Safety rules (see DESIGN.md in this folder):
//   - a disk's format comes only from the manifest, never from probing;
//   - a raw disk is never opened by a tool: its size is the file's size;
//   - a qcow2 disk's header is parsed here, by our own small reader, before
//     any tool opens it: a backing file or external data file that is not
//     the chain the manifest declares refuses the recovery point;
//   - disk files stay inside the recovery point's directory: no "..", no
//     absolute path, no symlink that leads out;
//   - the tenant and asset in the manifest must match the directory.
//
// A recovery point is never written.
package storage
