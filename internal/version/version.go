// Package version holds the software version, set at build time with
// -ldflags "-X github.com/restored/restored/internal/version.Version=...",
// and the version of the agent protocol the servers and agents speak.
package version

// Version of restored, hypervisor-agent and restorectl.
var Version = "0.1.0-dev"

// AgentProtocol is the version of the agent protocol (AgentService) this
// build speaks; a server refuses an agent that speaks another.
const AgentProtocol = 1
