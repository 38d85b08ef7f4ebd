package kvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"github.com/restored/restored/internal/hypervisor"
	"libvirt.org/go/libvirtxml"
)

func (d *Driver) lookup(ctx context.Context, name string) (libvirt.Domain, error) {
	return call(ctx, d, "look up "+name, func(l Libvirt) (libvirt.Domain, error) {
		return l.DomainLookupByName(name)
	})
}

// GuestCommand runs one QEMU guest agent command (args may be nil) and
// returns its "return" value. timeoutSec bounds the guest agent's answer.
func (d *Driver) GuestCommand(ctx context.Context, name, command string, args any, timeoutSec int32) (json.RawMessage, error) {
	dom, err := d.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := call(ctx, d, command+" "+name, func(l Libvirt) (libvirt.OptString, error) {
		return l.QEMUDomainAgentCommand(dom, string(body), timeoutSec, 0)
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: empty answer", command, name)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal([]byte(out[0]), &resp); err != nil || resp.Return == nil {
		return nil, fmt.Errorf("%s %s: unexpected answer %.200q", command, name, out[0])
	}
	return resp.Return, nil
}

// TextScreen reads the VGA text screen (80x25 at physical 0xB8000) of a
// guest that is in text mode, as lines. Only meaningful while the screen is
// in text mode (a 720x400 screenshot).
func (d *Driver) TextScreen(ctx context.Context, name string) ([]string, error) {
	dom, err := d.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	buf, err := call(ctx, d, "read text screen "+name, func(l Libvirt) ([]byte, error) {
		return l.DomainMemoryPeek(dom, 0xB8000, 80*25*2, libvirt.MemoryPhysical)
	})
	if err != nil {
		return nil, err
	}
	return DecodeTextScreen(buf), nil
}

// DecodeTextScreen turns VGA text memory (character, attribute pairs) into
// lines of printable text, trailing blanks removed.
func DecodeTextScreen(buf []byte) []string {
	var lines []string
	for row := 0; (row+1)*160 <= len(buf); row++ {
		var b strings.Builder
		for col := 0; col < 80; col++ {
			c := buf[row*160+col*2]
			if c < 0x20 || c > 0x7e {
				c = ' '
			}
			b.WriteByte(c)
		}
		lines = append(lines, strings.TrimRight(b.String(), " "))
	}
	return lines
}

// IsNotFound says whether err means the domain does not exist.
func IsNotFound(err error) bool {
	var re *rpcError
	if errors.As(err, &re) {
		return re.Code == uint32(libvirt.ErrNoDomain)
	}
	return isCode(err, libvirt.ErrNoDomain)
}

// VNC returns where a running domain's VNC server listens (its unix
// socket, or a TCP port of a domain defined before consoles moved to
// sockets) and its password, read from its live XML (with secrets).
func (d *Driver) VNC(ctx context.Context, name string) (hypervisor.ConsoleEndpoint, error) {
	none := hypervisor.ConsoleEndpoint{}
	dom, err := d.lookup(ctx, name)
	if err != nil {
		return none, err
	}
	x, err := call(ctx, d, "read the XML of "+name, func(l Libvirt) (string, error) {
		return l.DomainGetXMLDesc(dom, libvirt.DomainXMLSecure)
	})
	if err != nil {
		return none, err
	}
	var doc libvirtxml.Domain
	if err := doc.Unmarshal(x); err != nil {
		return none, err
	}
	if doc.Devices != nil {
		for _, g := range doc.Devices.Graphics {
			v := g.VNC
			if v == nil {
				continue
			}
			if v.Socket != "" {
				return hypervisor.ConsoleEndpoint{Network: "unix", Address: v.Socket, Password: v.Passwd}, nil
			}
			for _, l := range v.Listeners {
				if l.Socket != nil && l.Socket.Socket != "" {
					return hypervisor.ConsoleEndpoint{Network: "unix", Address: l.Socket.Socket, Password: v.Passwd}, nil
				}
			}
			if v.Port > 0 {
				return hypervisor.ConsoleEndpoint{Network: "tcp", Address: fmt.Sprintf("127.0.0.1:%d", v.Port), Password: v.Passwd}, nil
			}
		}
	}
	return none, fmt.Errorf("domain %s has no VNC server", name)
}
