// Package vmware is the VMware end-to-end test: restored and a
// hypervisor-agent with --hypervisor vmware as processes, against govmomi's
// vCenter simulator (vcsim) run as its own process on loopback, with
// `restorectl backup run` taking FULL and INCREMENTAL backups of a vcsim VM
// through the same commands as for KVM. vcsim does not implement
// QueryChangedDiskAreas: a proxy in front of it (internal/testvcsim)
// answers that one call with responses in vSphere's wire format, and says
// so. It is a package of its own so that `go test ./...` runs it beside the
// other end-to-end packages.
package vmware
