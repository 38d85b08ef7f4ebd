// Package multihost is the multi-host end-to-end test: three restored
// servers and two hypervisor agents, each in a network namespace of its
// own on a bridge the test owns (internal/testnet), booting the test image
// under the machine's real libvirtd. It proves placement by locality,
// agent failover when its server is killed, consoles through a server that
// does not hold the tunnel, a host whose link goes down and comes back,
// and a partitioned leader that acknowledges nothing. It is a package of
// its own so that `go test ./...` runs it beside the other end-to-end
// package.
package multihost
