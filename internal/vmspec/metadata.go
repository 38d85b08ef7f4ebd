package vmspec

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"libvirt.org/go/libvirtxml"
)

// MetadataNamespace is the XML namespace of Restored's domain metadata.
const MetadataNamespace = "https://restored.dev/xmlns/restore/v1"

// Metadata is what a domain carries so that the agent can tell, from libvirt
// alone, which restore it belongs to.
type Metadata struct {
	XMLName   xml.Name `xml:"https://restored.dev/xmlns/restore/v1 restore"`
	RestoreID string   `xml:"id"`
	Tenant    string   `xml:"tenant"`
	HostID    string   `xml:"host"`
	ExpireAt  string   `xml:"expire"`
}

// configureMetadata writes Restored's metadata element.
func configureMetadata(c *Context, d *libvirtxml.Domain) error {
	m := Metadata{RestoreID: c.In.RestoreID, Tenant: c.In.Tenant, HostID: c.In.HostID, ExpireAt: c.In.ExpireAt.UTC().Format(time.RFC3339)}
	b, err := xml.Marshal(m)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	d.Metadata = &libvirtxml.DomainMetadata{XML: string(b)}
	return nil
}

// ParseMetadata reads Restored's metadata back from a domain, as returned by
// libvirt (which may re-prefix the namespace). ok is false for domains that
// are not Restored's.
func ParseMetadata(d *libvirtxml.Domain) (Metadata, bool) {
	var m Metadata
	if d.Metadata == nil {
		return m, false
	}
	dec := xml.NewDecoder(strings.NewReader(d.Metadata.XML))
	for {
		tok, err := dec.Token()
		if err != nil {
			return m, false
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Space != MetadataNamespace || se.Name.Local != "restore" {
			continue
		}
		if err := dec.DecodeElement(&m, &se); err != nil || m.RestoreID == "" {
			return Metadata{}, false
		}
		return m, true
	}
}

// OwnerNamespace is the XML namespace of the element by which a hoster
// assigns a domain to a tenant: <owner xmlns="https://restored.dev/xmlns/owner/v1" tenant="acme"/>
// in the domain's <metadata> (virsh metadata DOMAIN https://restored.dev/xmlns/owner/v1
// --key restored --set '<owner tenant="acme"/>').
const OwnerNamespace = "https://restored.dev/xmlns/owner/v1"

// ParseOwner reads the tenant a hoster assigned a domain to ("" if none).
func ParseOwner(d *libvirtxml.Domain) string {
	if d.Metadata == nil {
		return ""
	}
	dec := xml.NewDecoder(strings.NewReader(d.Metadata.XML))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Space != OwnerNamespace || se.Name.Local != "owner" {
			continue
		}
		for _, a := range se.Attr {
			if a.Name.Local == "tenant" {
				return a.Value
			}
		}
		return ""
	}
}
