// Package diskview reads a recovery point's disks the way a file-level
// restore needs them, without booting anything and without the host's
// kernel ever mounting a filesystem from a backup: partition tables (MBR,
// GPT) and filesystems (ext4, XFS, NTFS, FAT) are parsed in user space, from
// an io.ReaderAt of the raw disk (the agent gives it one over NBD, the
// qcow2 chain read by QEMU).
//
// A backup's filesystem is untrusted input. Names are checked before they
// become a listing's or an archive's paths (no "/", NUL, "." or ".."), a
// symbolic link is reported with its target and never followed, walks are
// bounded in depth and entries, and a damaged filesystem is an error
// naming what could not be read. The parsers run in a confined child
// process (package fileread), so one that loops or asks for 2^40 bytes is
// stopped by its limits rather than the agent.
package diskview
