package server

import (
	"net"
	"strings"
	"testing"
)

func TestAServerOnEveryInterfaceNeedsAnAdvertisedAddress(t *testing.T) {
	local := Config{GRPCAddr: "127.0.0.1:7443", HTTPAddr: "127.0.0.1:7080", RaftAddr: "127.0.0.1:7300"}
	open := Config{GRPCAddr: "0.0.0.0:7443", HTTPAddr: ":7080", RaftAddr: "[::]:7300"}
	tests := []struct {
		name string
		cfg  Config
		want string // "" accepts
	}{
		{"loopback", local, ""},
		{"every interface without an advertised address", open, "--grpc-addr 0.0.0.0:7443 listens on every interface"},
		{"every interface, advertised", withAdvertise(open, "10.0.0.5"), ""},
		{"an advertised address with a port", withAdvertise(open, "10.0.0.5:7443"), "has a port"},
		{"an unspecified advertised address", withAdvertise(open, "0.0.0.0"), "reaches nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAdvertise(tt.cfg)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	bound := &net.TCPAddr{IP: net.IPv4zero, Port: 7443}
	if got := withAdvertise(open, "restored-1.example").advertised(bound); got != "restored-1.example:7443" {
		t.Fatalf("advertised %s", got)
	}
	if got := raftAdvertise(withAdvertise(open, "10.0.0.5")); got != "10.0.0.5:7300" {
		t.Fatalf("raft advertised %s", got)
	}
}

func withAdvertise(c Config, a string) Config { c.AdvertiseAddr = a; return c }
