// Package netiso makes and removes isolated restore networks: one Linux
// bridge per restore with no host address (IPv4 or IPv6 link-local), so a
// restored machine can reach nothing but itself and the host cannot reach
// it. Uses iproute2.
package netiso

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// BridgeName is the isolated bridge of a restore: "rsti" + 10 hex digits of
// the restore id's hash (Linux allows 15 characters).
func BridgeName(restoreID string) string {
	h := sha256.Sum256([]byte(restoreID))
	return "rsti" + hex.EncodeToString(h[:])[:10]
}

func ip(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Exists reports whether the bridge is there.
func Exists(ctx context.Context, name string) bool {
	_, err := ip(ctx, "link", "show", "dev", name)
	return err == nil
}

// Ensure creates the bridge (if missing) with no addresses and brings it up.
func Ensure(ctx context.Context, name string) error {
	if !Exists(ctx, name) {
		// Two restores of one lab may make its bridge at once.
		if out, err := ip(ctx, "link", "add", "name", name, "type", "bridge"); err != nil && !strings.Contains(string(out), "File exists") {
			return err
		}
	}
	// No IPv6 link-local address either: the host takes no part in the network.
	if _, err := ip(ctx, "link", "set", "dev", name, "addrgenmode", "none"); err != nil {
		return err
	}
	if _, err := ip(ctx, "address", "flush", "dev", name); err != nil {
		return err
	}
	_, err := ip(ctx, "link", "set", "dev", name, "up")
	return err
}

// Remove deletes the bridge; a missing bridge is already removed.
func Remove(ctx context.Context, name string) error {
	if !Exists(ctx, name) {
		return nil
	}
	_, err := ip(ctx, "link", "delete", "dev", name, "type", "bridge")
	return err
}

// Addresses lists the host addresses on the bridge (there should be none).
func Addresses(ctx context.Context, name string) ([]string, error) {
	out, err := ip(ctx, "-j", "address", "show", "dev", name)
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("parse ip -j output: %w", err)
	}
	var addrs []string
	for _, l := range links {
		for _, a := range l.AddrInfo {
			addrs = append(addrs, a.Local)
		}
	}
	return addrs, nil
}
