package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/restored/restored/internal/nbd"
	"github.com/restored/restored/internal/pki"
)

// DefaultNBDAddr is where the NBD gate listens unless told otherwise (the
// NBD port, loopback only: give --nbd-addr and --advertise-addr for backup
// jobs on other machines).
const DefaultNBDAddr = "127.0.0.1:10809"

// exports is the part of the agent that serves its snapshots' disks to
// backup jobs: one TLS listener (the NBD gate) in front of the unix sockets
// QEMU's NBD servers listen on. A job presents the client certificate the
// control plane issued for one snapshot (IssueSnapshotCredentials) and
// reaches that snapshot's exports only, while this run serves it.
//
// The gate's own certificate comes from a CA of this host's own (kept in
// <work-dir>/tls/nbd), not from the cluster CA: it names the address jobs
// dial, and a certificate naming an address must never chain to the
// cluster CA from an agent (it could pose as a server). The host reports
// its gate CA with each READY snapshot; jobs trust it for that snapshot.
type exports struct {
	hostID string
	// advertised is the gate's address as backup jobs dial it.
	advertised string
	// caPEM is the gate CA's certificate, reported with READY snapshots.
	caPEM     string
	gate      *nbd.Gate
	listener  net.Listener
	snapshots *snapshots
	restores  *restores
	stop      chan struct{}
}

// gateCertLifetime is how long a gate certificate lives; it is issued
// again every day, and at each start.
const gateCertLifetime = 30 * 24 * time.Hour

// gateCA loads this host's gate CA from dir, or makes it.
func gateCA(dir, hostID string) (*pki.CA, error) {
	f := pki.Files{Dir: dir}
	if ca, err := pki.LoadCA(f.CA(), f.CAKey()); err == nil && ca.CanIssue() {
		return ca, nil
	} else if !errors.Is(err, os.ErrNotExist) && err != nil {
		return nil, fmt.Errorf("the NBD gate CA in %s: %w", dir, err)
	}
	ca, err := pki.NewCA("Restored NBD gate of host "+hostID, time.Now())
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKey(ca.Key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := pki.Write(f.CAKey(), keyPEM, true); err != nil {
		return nil, err
	}
	return ca, pki.Write(f.CA(), pki.EncodeCert(ca.Cert), false)
}

// gateCert issues the gate a certificate naming hosts.
func gateCert(ca *pki.CA, hostID string, hosts []string) ([]byte, []byte, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, nil, err
	}
	cert, err := ca.Issue(pki.Request{Identity: pki.Identity{Role: pki.RoleAgent, Name: hostID}, Public: key.Public(),
		Hosts: hosts, Lifetime: gateCertLifetime, Now: time.Now()})
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	return pki.EncodeCert(cert), keyPEM, err
}

// checkNBDAddr refuses a gate that would hand out an address nobody can
// dial: one bound to every interface without an advertise address.
func checkNBDAddr(listen, advertise string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--nbd-addr %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); (host == "" || (ip != nil && ip.IsUnspecified())) && advertise == "" {
		return fmt.Errorf("--nbd-addr %s listens on every interface, which is no address a backup job can dial: give --advertise-addr (this host's routable address)", listen)
	}
	if advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err == nil {
			return fmt.Errorf("--advertise-addr %q has a port: give the host only", advertise)
		}
	}
	return nil
}

// openExports listens for backup jobs with the agent's certificate.
func (a *Agent) openExports(snaps *snapshots, rs *restores) (*exports, error) {
	l, err := net.Listen("tcp", a.cfg.NBDAddr)
	if err != nil {
		return nil, fmt.Errorf("NBD gate on %s: %w", a.cfg.NBDAddr, err)
	}
	host, _, _ := net.SplitHostPort(a.cfg.NBDAddr)
	if a.cfg.AdvertiseAddr != "" {
		host = a.cfg.AdvertiseAddr
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	fail := func(err error) (*exports, error) { l.Close(); return nil, fmt.Errorf("NBD gate: %w", err) }
	ca, err := gateCA(filepath.Join(TLSDir(a.cfg.WorkDir), "nbd"), a.cfg.HostID)
	if err != nil {
		return fail(err)
	}
	names := []string{host}
	if lh, _, _ := net.SplitHostPort(a.cfg.NBDAddr); lh != host && lh != "" && !net.ParseIP(lh).IsUnspecified() {
		names = append(names, lh)
	}
	certPEM, keyPEM, err := gateCert(ca, a.cfg.HostID, names)
	if err != nil {
		return fail(err)
	}
	keeper, err := pki.NewKeeper(certPEM, keyPEM)
	if err != nil {
		return fail(err)
	}
	e := &exports{hostID: a.cfg.HostID, advertised: net.JoinHostPort(host, port), caPEM: string(pki.EncodeCert(ca.Cert)),
		listener: l, snapshots: snaps, restores: rs, stop: make(chan struct{})}
	// Clients: a snapshot's or an export's certificate of the cluster CA,
	// nothing else.
	e.gate = &nbd.Gate{
		TLS:     pki.ServerConfig(keeper, a.id.CA.Pool(), pki.Peer{Roles: []pki.Role{pki.RoleSnapshot, pki.RoleExport}}),
		Backend: e.backend,
		Log:     a.log,
	}
	if a.metrics != nil {
		e.gate.Served = a.metrics.AddNBDServed
	}
	go func() { _ = e.gate.Serve(l) }()
	go e.renew(ca, keeper, names, a.log)
	a.log.Info("NBD gate listening (TLS, snapshot certificates only)", "addr", l.Addr().String(), "advertised", e.advertised, "names", names)
	return e, nil
}

// renew issues the gate a new certificate every day.
func (e *exports) renew(ca *pki.CA, k *pki.Keeper, names []string, log *slog.Logger) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		certPEM, keyPEM, err := gateCert(ca, e.hostID, names)
		if err == nil {
			err = k.Set(certPEM, keyPEM)
		}
		if err != nil {
			log.Error("renewing the NBD gate's certificate failed", "err", err)
		}
	}
}

// close stops the gate and ends its clients.
func (e *exports) close() {
	close(e.stop)
	e.listener.Close()
	e.gate.CloseAll()
}

// backend is the NBD server a client's certificate reaches: its snapshot's,
// while this run serves it.
func (e *exports) backend(st tls.ConnectionState) (string, string, error) {
	if len(st.PeerCertificates) == 0 {
		return "", "", fmt.Errorf("no client certificate")
	}
	id, err := pki.IdentityOf(st.PeerCertificates[0])
	if err != nil {
		return "", "", fmt.Errorf("the certificate is not a snapshot's or an export's")
	}
	switch id.Role {
	case pki.RoleSnapshot:
		sock, ok := e.snapshots.socketOf(id.Name)
		if !ok {
			return "", "", fmt.Errorf("snapshot %s is not served by host %s (released, or not READY)", id.Name, e.hostID)
		}
		return "unix", sock, nil
	case pki.RoleExport:
		if e.restores == nil {
			break
		}
		sock, ok := e.restores.exportSocket(id.Name)
		if !ok {
			return "", "", fmt.Errorf("export %s is not served by host %s (deleted, or not RUNNING)", id.Name, e.hostID)
		}
		return "unix", sock, nil
	}
	return "", "", fmt.Errorf("the certificate is not a snapshot's or an export's")
}

// uri is an export as backup jobs reach it through the gate.
func (e *exports) uri(export string) string {
	return nbd.Target{Network: "tcp", Address: e.advertised, Export: export, TLS: true}.String()
}
