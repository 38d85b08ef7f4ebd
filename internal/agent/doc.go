// Package agent is the hypervisor agent: it registers its host with the
// control plane, heartbeats, reports the recovery points of its repository,
// watches the restores assigned to it and makes libvirt match them (boot
// from an overlay, verify the boot, tear down), reporting every step. A
// VERIFY restore gathers evidence and a verdict (verification.go); the
// agent's tunnel lets the server fetch screenshots and open consoles
// (tunnel.go).
//
// The agent's truth about what runs is libvirt itself: every domain carries
// Restored metadata, and reconciliation compares the assignments with the
// domains libvirt lists, so a restarted agent adopts what is wanted and
// removes what is not.
package agent
