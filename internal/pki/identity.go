package pki

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// Role is what a certificate's holder is.
type Role string

// The roles.
const (
	// RoleServer: a restored server (raft, forwarding, server-only RPCs).
	RoleServer Role = "server"
	// RoleAgent: a hypervisor agent, acting for one host only.
	RoleAgent Role = "agent"
	// RoleSnapshot: a backup job reading one snapshot's exports from its
	// host's NBD gate, and nothing else (every API port asks it for a
	// token; raft and server-only RPCs refuse it).
	RoleSnapshot Role = "snapshot"
	// RoleExport: a machine outside Restored reading (or writing) one
	// EXPORT restore's disks through its host's NBD gate, and nothing else.
	RoleExport Role = "export"
)

// readers are the roles of certificates that reach one NBD gate's
// exports and no API: a snapshot's backup job, an export's reader.
func (r Role) reader() bool { return r == RoleSnapshot || r == RoleExport }

// Identity is who a certificate says its holder is.
type Identity struct {
	Role Role
	// Name is the server's node id or the agent's host id.
	Name string
}

func (id Identity) String() string { return string(id.Role) + " " + id.Name }

const uriScheme = "restored"

// URI is the identity as the certificate's URI SAN.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: uriScheme, Host: string(id.Role), Path: "/" + id.Name}
}

// IdentityOf reads the identity a certificate of the cluster CA carries.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	for _, u := range cert.URIs {
		if u.Scheme != uriScheme {
			continue
		}
		id := Identity{Role: Role(u.Host), Name: strings.TrimPrefix(u.Path, "/")}
		if (id.Role == RoleServer || id.Role == RoleAgent || id.Role.reader()) && id.Name != "" && !strings.Contains(id.Name, "/") {
			return id, nil
		}
	}
	return Identity{}, fmt.Errorf("certificate %q carries no Restored identity", cert.Subject.CommonName)
}
