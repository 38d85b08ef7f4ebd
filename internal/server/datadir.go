package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// prepareDataDir makes sure dir exists and is writable, failing with a
// message that says what to do.
func prepareDataDir(dir string) error {
	if dir == "" {
		return errors.New("--data-dir is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s cannot be created: %w (choose another --data-dir or fix its permissions)", dir, err)
	}
	probe := filepath.Join(dir, ".write-probe")
	if err := os.WriteFile(probe, []byte("ok"), 0o600); err != nil {
		return fmt.Errorf("data dir %s is not writable: %w (choose another --data-dir or fix its permissions)", dir, err)
	}
	return os.Remove(probe)
}

// nodeID returns the persisted raft id of this server, creating it from the
// host name and raft port on first start.
func nodeID(dir, override, raftAddr string) (string, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if override != "" && override != id {
			return "", fmt.Errorf("--node-id %q differs from %q kept in %s; a server's id cannot change", override, id, path)
		}
		return id, nil
	}
	id := override
	if id == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(raftAddr)
		id = fmt.Sprintf("%s-%s", strings.ToLower(host), port)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}

// listen opens a TCP listener with a clear message when the port is taken.
func listen(what, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s address %s: %w (is another restored running? choose another address with --%s-addr)", what, addr, err, what)
	}
	return l, nil
}
