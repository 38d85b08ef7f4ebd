package nbd

import (
	"fmt"
	"net/url"
	"strings"
)

// Target is where an export is: a network, an address and the export name;
// TLS says the server takes only TLS (an nbds:// URI).
type Target struct {
	Network, Address, Export string
	TLS                      bool
}

// ParseURI parses the NBD URI forms a snapshot hands out:
// nbds://host:port/export (TLS), nbd://host:port/export and
// nbd+unix:///export?socket=/path.
func ParseURI(s string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("nbd: bad URI %q: %w", s, err)
	}
	export := strings.TrimPrefix(u.Path, "/")
	switch u.Scheme {
	case "nbd", "nbds":
		host := u.Host
		if u.Port() == "" {
			host += ":10809"
		}
		if u.Hostname() == "" {
			return Target{}, fmt.Errorf("nbd: URI %q names no host", s)
		}
		return Target{Network: "tcp", Address: host, Export: export, TLS: u.Scheme == "nbds"}, nil
	case "nbd+unix":
		sock := u.Query().Get("socket")
		if sock == "" {
			return Target{}, fmt.Errorf("nbd: URI %q names no socket", s)
		}
		return Target{Network: "unix", Address: sock, Export: export}, nil
	}
	return Target{}, fmt.Errorf("nbd: URI %q: scheme must be nbds, nbd or nbd+unix", s)
}

// String is the target as a URI.
func (t Target) String() string {
	if t.Network == "unix" {
		return "nbd+unix:///" + url.PathEscape(t.Export) + "?socket=" + url.QueryEscape(t.Address)
	}
	scheme := "nbd"
	if t.TLS {
		scheme = "nbds"
	}
	return scheme + "://" + t.Address + "/" + url.PathEscape(t.Export)
}
