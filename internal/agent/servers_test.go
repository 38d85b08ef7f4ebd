package agent

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
)

func TestHostsSpreadOverTheServersAndMoveOnlyWhenTheirServerGoes(t *testing.T) {
	cluster := []string{"s1:7443", "s2:7443", "s3:7443"}
	first := map[string]string{}
	count := map[string]int{}
	for i := range 3000 {
		host := fmt.Sprintf("kvm-%04d", i)
		s := newServers(host, t.TempDir(), []string{"seed:7443"}, slog.Default())
		s.learn(cluster)
		o := s.order()
		if len(o) != 4 || o[3] != "seed:7443" {
			t.Fatalf("order %v: want the three servers, then the seed the cluster did not name", o)
		}
		first[host] = o[0]
		count[o[0]]++
		// s2 leaves: only s2's hosts move.
		s.learn([]string{"s1:7443", "s3:7443"})
		if o2 := s.order(); first[host] != "s2:7443" && o2[0] != first[host] {
			t.Fatalf("host %s moved from %s to %s though its server stayed", host, first[host], o2[0])
		}
	}
	for _, srv := range cluster {
		if count[srv] < 800 || count[srv] > 1200 {
			t.Fatalf("server %s is first for %d of 3000 hosts: %v", srv, count[srv], count)
		}
	}
}

func TestServerListIsKeptForTheNextRun(t *testing.T) {
	dir := t.TempDir()
	s := newServers("kvm-01", dir, []string{"a:1"}, slog.Default())
	if o := s.order(); !slices.Equal(o, []string{"a:1"}) {
		t.Fatalf("before learning: %v", o)
	}
	s.learn([]string{"b:1", "c:1", "b:1"})
	s.learn(nil) // an empty answer forgets nothing
	again := newServers("kvm-01", dir, []string{"a:1"}, slog.Default())
	if o := again.order(); len(o) != 3 || !slices.Contains(o, "b:1") || !slices.Contains(o, "c:1") || o[2] != "a:1" {
		t.Fatalf("next run's order %v: want b and c (kept), then the seed", o)
	}
}
