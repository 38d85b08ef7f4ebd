package api

import (
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// needs refuses a request its host's hypervisor cannot serve, before raft,
// naming the capability (a host never registered can serve nothing).
func needs(r *store.Reader, hostID string, c hypervisor.Capability, what string) error {
	h := r.Host(hostID)
	if h == nil {
		return status.Errorf(codes.FailedPrecondition, "host %s has never registered", hostID)
	}
	if !hypervisor.OfHost(h).Has(c) {
		return hypervisor.Missing(hostID, c, what)
	}
	return nil
}

// anyCan refuses a request when none of hosts can serve it.
func anyCan(r *store.Reader, hosts []string, c hypervisor.Capability, what string) error {
	var first error
	for _, id := range hosts {
		err := needs(r, id, c, what)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}
