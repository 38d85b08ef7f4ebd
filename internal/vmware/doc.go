// Package vmware is the VMware driver for backup jobs, on govmomi: it turns
// on Changed Block Tracking, takes, lists and removes snapshots (quiesced
// when asked, reporting what vSphere says it got), and asks vSphere which
// areas of a disk changed since a change id (QueryChangedDiskAreas).
//
// Reading the data (VDDK or NFC) is not part of it: see docs/backup.md for
// what a production deployment needs. Tests run against govmomi's vcsim;
// vcsim does not implement QueryChangedDiskAreas, so that call is tested
// with a response in vSphere's wire format served by a client-side round
// tripper (testdata/), and says so.
package vmware
