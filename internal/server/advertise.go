package server

import (
	"fmt"
	"net"
)

// unspecified says whether a listen address binds every interface.
func unspecified(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// checkAdvertise refuses to start a server that would publish an address
// nobody can dial: one bound to every interface without --advertise-addr.
func checkAdvertise(cfg Config) error {
	if cfg.AdvertiseAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.AdvertiseAddr); err == nil {
			return fmt.Errorf("--advertise-addr %q has a port: give the host only; each listener is advertised with its own port", cfg.AdvertiseAddr)
		}
		if ip := net.ParseIP(cfg.AdvertiseAddr); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("--advertise-addr %s binds everything and reaches nothing: give this machine's routable address", cfg.AdvertiseAddr)
		}
		return nil
	}
	for _, a := range []struct{ flag, addr string }{{"grpc-addr", cfg.GRPCAddr}, {"http-addr", cfg.HTTPAddr}, {"raft-addr", cfg.RaftAddr}} {
		if unspecified(a.addr) {
			return fmt.Errorf("--%s %s listens on every interface, which is no address another machine can dial: give --advertise-addr (this machine's routable address; each port is advertised with it)", a.flag, a.addr)
		}
	}
	return nil
}

// advertised is the address others dial for a listener bound at bound:
// the advertise host with the bound port, or the bound address itself.
func (c Config) advertised(bound net.Addr) string {
	if c.AdvertiseAddr == "" {
		return bound.String()
	}
	_, port, _ := net.SplitHostPort(bound.String())
	return net.JoinHostPort(c.AdvertiseAddr, port)
}

// raftAdvertise is the raft address to advertise when --advertise-addr is
// given (the advertise host with the raft port); "" lets raft take its own.
func raftAdvertise(cfg Config) string {
	if cfg.AdvertiseAddr == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(cfg.RaftAddr)
	if err != nil || port == "0" {
		return "" // a picked port: the transport advertises what it bound
	}
	return net.JoinHostPort(cfg.AdvertiseAddr, port)
}
