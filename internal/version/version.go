// Package version holds the software version, set at build time with
// -ldflags "-X github.com/restored/restored/internal/version.Version=...".
package version

// Version of restored, hypervisor-agent and restorectl.
var Version = "0.1.0-dev"
