package kvm

import "github.com/digitalocean/go-libvirt"

// Libvirt is the part of go-libvirt the driver uses.
type Libvirt interface {
	DomainDefineXMLFlags(XML string, Flags libvirt.DomainDefineFlags) (libvirt.Domain, error)
	DomainCreate(Dom libvirt.Domain) error
	DomainDestroyFlags(Dom libvirt.Domain, Flags libvirt.DomainDestroyFlagsValues) error
	DomainUndefineFlags(Dom libvirt.Domain, Flags libvirt.DomainUndefineFlagsValues) error
	DomainLookupByName(Name string) (libvirt.Domain, error)
	ConnectListAllDomains(NeedResults int32, Flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error)
	DomainGetXMLDesc(Dom libvirt.Domain, Flags libvirt.DomainXMLFlags) (string, error)
	DomainGetState(Dom libvirt.Domain, Flags uint32) (int32, int32, error)
	Disconnect() error
}

var _ Libvirt = (*libvirt.Libvirt)(nil)
