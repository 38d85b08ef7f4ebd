package cli

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v4"
)

// restoreSpec is one restore as a person writes it: the flags of
// restore create, and each item of a site file.
type restoreSpec struct {
	RecoveryPoint string        `yaml:"recovery_point"`
	Mode          string        `yaml:"mode"`
	VCPUs         int32         `yaml:"vcpus"`
	MemoryMiB     int64         `yaml:"memory_mib"`
	TTL           time.Duration `yaml:"ttl"`
	Network       string        `yaml:"network"`
	Bridge        string        `yaml:"bridge"`
	Firmware      string        `yaml:"firmware"`
	ReadWrite     bool          `yaml:"read_write"`
	// Format is an IMAGE restore's: qcow2, vmdk or vhdx.
	Format string `yaml:"format"`
	// Protocol is an EXPORT restore's: nbd (default) or iscsi.
	Protocol string `yaml:"protocol"`
}

// request is the spec as the API takes it (no request id).
func (s restoreSpec) request() (*restorev1.CreateRestoreRequest, error) {
	req := &restorev1.CreateRestoreRequest{RecoveryPointId: s.RecoveryPoint, Vcpus: s.VCPUs, MemoryMib: s.MemoryMiB, TtlSeconds: int64(s.TTL / time.Second)}
	m, err := parseEnum("mode", restorev1.Mode(0).Descriptor(), "MODE_", cmp.Or(s.Mode, "virtualize"))
	if err != nil {
		return nil, err
	}
	req.Mode = restorev1.Mode(m)
	n, err := parseEnum("network", restorev1.NetworkKind(0).Descriptor(), "NETWORK_KIND_", cmp.Or(s.Network, "none"))
	if err != nil {
		return nil, err
	}
	req.Network = &restorev1.Network{Kind: restorev1.NetworkKind(n), Bridge: s.Bridge}
	f, err := parseEnum("firmware", restorev1.Firmware(0).Descriptor(), "FIRMWARE_", cmp.Or(s.Firmware, "auto"))
	if err != nil {
		return nil, err
	}
	req.Firmware = restorev1.Firmware(f)
	if req.Mode == restorev1.Mode_MODE_EXPORT {
		p, err := parseEnum("protocol", restorev1.ExportProtocol(0).Descriptor(), "EXPORT_PROTOCOL_", cmp.Or(s.Protocol, "nbd"))
		if err != nil {
			return nil, err
		}
		req.Export = &restorev1.ExportOptions{ReadWrite: s.ReadWrite, Protocol: restorev1.ExportProtocol(p)}
	} else if s.ReadWrite || s.Protocol != "" {
		return nil, fmt.Errorf("read-write and protocol are for mode export")
	}
	if req.Mode == restorev1.Mode_MODE_IMAGE {
		f, err := parseEnum("format", restorev1.ImageFormat(0).Descriptor(), "IMAGE_FORMAT_", s.Format)
		if err != nil {
			return nil, err
		}
		req.Image = &restorev1.ImageOptions{Format: restorev1.ImageFormat(f)}
	} else if s.Format != "" {
		return nil, fmt.Errorf("format is for mode image")
	}
	return req, nil
}

// siteFile is a batch as a person writes it.
type siteFile struct {
	RequestID string        `yaml:"request_id"`
	Items     []restoreSpec `yaml:"items"`
}

// readSite reads a site file into a batch; requestID (the flag), when
// given, names the batch instead of the file's.
func readSite(path, requestID string) (*restorev1.BatchCreateRestoresRequest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var site siteFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&site); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := &restorev1.BatchCreateRestoresRequest{RequestId: cmp.Or(requestID, site.RequestID)}
	if out.RequestId == "" {
		return nil, fmt.Errorf("%s: give the batch a request_id (in the file or with --request-id), so that running it again does not restore the site twice", path)
	}
	for i, it := range site.Items {
		req, err := it.request()
		if err != nil {
			return nil, fmt.Errorf("%s: items[%d]: %w", path, i, err)
		}
		out.Items = append(out.Items, req)
	}
	return out, nil
}

// watchRestores prints each change of the restores first given until
// every one is settled (done says so of a state), with a line for the
// whole set after each.
func watchRestores(g *globals, cmd *cobra.Command, filter *restorev1.WatchRestoresRequest, first []*restorev1.Restore, done func(restorev1.RestoreState) bool) error {
	states := map[string]restorev1.RestoreState{}
	for _, x := range first {
		states[x.Id] = x.State
	}
	settled := func() bool {
		for _, st := range states {
			if !done(st) {
				return false
			}
		}
		return true
	}
	if settled() {
		return nil
	}
	last := map[string]string{}
	return follow(g, cmd, filter, func(x *restorev1.Restore) (bool, error) {
		if _, ok := states[x.Id]; !ok {
			return false, nil
		}
		states[x.Id] = x.State
		line := fmt.Sprintf("%-10s %s %s", trimEnum(x.State.String(), "RESTORE_STATE_"), orDash(x.HostId), x.StateReason)
		if last[x.Id] == line {
			return settled(), nil
		}
		last[x.Id] = line
		if g.output == "json" {
			return settled(), g.printJSON(x)
		}
		fmt.Fprintf(g.out, "%s  %s  %s\n", time.Now().UTC().Format(time.TimeOnly), x.Id, line)
		if len(states) > 1 {
			fmt.Fprintf(g.out, "          %s\n", summary(states))
		}
		return settled(), nil
	})
}

// follow streams the restores filter matches (without a deadline) and
// gives each change to seen until it says the watch is over or fails.
func follow(g *globals, cmd *cobra.Command, filter *restorev1.WatchRestoresRequest, seen func(*restorev1.Restore) (over bool, err error)) error {
	conn, ctx, hangUp, err := g.dialFor(cmd, 0)
	if err != nil {
		return err
	}
	defer hangUp()
	stream, err := restorev1.NewRestoreServiceClient(conn).WatchRestores(ctx, filter)
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if over, err := seen(msg.Restore); over || err != nil {
			return err
		}
	}
}

// summary counts restores by state: "2 RUNNING, 3 PENDING (of 5)".
func summary(states map[string]restorev1.RestoreState) string {
	count := map[string]int{}
	for _, st := range states {
		count[trimEnum(st.String(), "RESTORE_STATE_")]++
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%d %s", count[n], n))
	}
	return fmt.Sprintf("%s (of %d)", strings.Join(parts, ", "), len(states))
}
