// Package fileread runs diskview in a confined child process, so a
// backup's filesystem is parsed where a parser bug costs nothing: the
// child is the agent's own binary (ChildArg), makes an empty directory its
// root, runs as nobody with no new privileges, in network, IPC and UTS
// namespaces of its own, may write no file, holds at most MemoryLimit of address space and CPULimit of CPU,
// and reads the disks only over the NBD sockets it is handed (one per
// disk, served read-only by QEMU through the recovery point's qcow2
// chain). It is asked one thing on stdin (a Request) and answers on
// stdout: a listing as JSON, or a file's or an archive's bytes; on error
// it exits non-zero with a Failure on stderr.
package fileread
