// Package kvm is the KVM/QEMU hypervisor driver: it defines, starts, lists
// and destroys restore domains through libvirtd, using go-libvirt (pure Go,
// libvirt's RPC protocol), and takes pull-mode backups of guests. Host
// (host.go, restores.go, observe.go, snapshots.go) implements the agent's
// hypervisor interfaces on top of Driver. The calls it makes are listed in the Libvirt
// interface (shim.go), which mirrors go-libvirt with no logic so that unit
// tests can fake it. Every call runs under a context deadline (go-libvirt
// takes none): a call that overruns its deadline drops the connection, which
// is re-dialled on the next call.
//
// What it must not do: decide a restore's lifecycle (it does what the agent
// asks), or write a recovery point (only overlays on it).
package kvm
