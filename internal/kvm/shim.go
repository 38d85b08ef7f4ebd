package kvm

import (
	"context"

	"github.com/digitalocean/go-libvirt"
)

// Libvirt is the part of go-libvirt the driver uses.
type Libvirt interface {
	DomainDefineXMLFlags(XML string, Flags libvirt.DomainDefineFlags) (libvirt.Domain, error)
	DomainCreate(Dom libvirt.Domain) error
	DomainSuspend(Dom libvirt.Domain) error
	DomainDestroyFlags(Dom libvirt.Domain, Flags libvirt.DomainDestroyFlagsValues) error
	DomainUndefineFlags(Dom libvirt.Domain, Flags libvirt.DomainUndefineFlagsValues) error
	DomainLookupByName(Name string) (libvirt.Domain, error)
	DomainLookupByUUID(UUID libvirt.UUID) (libvirt.Domain, error)
	ConnectListAllDomains(NeedResults int32, Flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error)
	DomainGetXMLDesc(Dom libvirt.Domain, Flags libvirt.DomainXMLFlags) (string, error)
	DomainGetState(Dom libvirt.Domain, Flags uint32) (int32, int32, error)
	QEMUDomainAgentCommand(Dom libvirt.Domain, Cmd string, Timeout int32, Flags uint32) (libvirt.OptString, error)
	DomainMemoryPeek(Dom libvirt.Domain, Offset uint64, Size uint32, Flags libvirt.DomainMemoryFlags) ([]byte, error)
	NodeGetInfo() (rModel [32]int8, rMemory uint64, rCpus int32, rMhz int32, rNodes int32, rSockets int32, rCores int32, rThreads int32, err error)
	DomainBackupBegin(Dom libvirt.Domain, BackupXML string, CheckpointXML libvirt.OptString, Flags libvirt.DomainBackupBeginFlags) error
	DomainBackupGetXMLDesc(Dom libvirt.Domain, Flags uint32) (string, error)
	DomainAbortJob(Dom libvirt.Domain) error
	DomainCheckpointLookupByName(Dom libvirt.Domain, Name string, Flags uint32) (libvirt.DomainCheckpoint, error)
	DomainCheckpointGetXMLDesc(Checkpoint libvirt.DomainCheckpoint, Flags uint32) (string, error)
	DomainCheckpointDelete(Checkpoint libvirt.DomainCheckpoint, Flags libvirt.DomainCheckpointDeleteFlags) error
	DomainListAllCheckpoints(Dom libvirt.Domain, NeedResults int32, Flags uint32) ([]libvirt.DomainCheckpoint, int32, error)
	DomainFsfreeze(Dom libvirt.Domain, Mountpoints []string, Flags uint32) (int32, error)
	DomainFsthaw(Dom libvirt.Domain, Mountpoints []string, Flags uint32) (int32, error)
	DomainGetBlockInfo(Dom libvirt.Domain, Path string, Flags uint32) (uint64, uint64, uint64, error)
	DomainUpdateDeviceFlags(Dom libvirt.Domain, XML string, Flags libvirt.DomainDeviceModifyFlags) error
	DomainBlockCopy(Dom libvirt.Domain, Path string, Destxml string, Params []libvirt.TypedParam, Flags libvirt.DomainBlockCopyFlags) error
	DomainGetBlockJobInfo(Dom libvirt.Domain, Path string, Flags uint32) (int32, int32, uint64, uint64, uint64, error)
	DomainBlockJobAbort(Dom libvirt.Domain, Path string, Flags libvirt.DomainBlockJobAbortFlags) error
	DomainSetMetadata(Dom libvirt.Domain, Type int32, Metadata libvirt.OptString, Key libvirt.OptString, Uri libvirt.OptString, Flags libvirt.DomainModificationImpact) error
	StoragePoolLookupByName(Name string) (libvirt.StoragePool, error)
	StoragePoolGetXMLDesc(Pool libvirt.StoragePool, Flags libvirt.StorageXMLFlags) (string, error)
	StoragePoolRefresh(Pool libvirt.StoragePool, Flags uint32) error
	LifecycleEvents(ctx context.Context) (<-chan libvirt.DomainEventLifecycleMsg, error)
	Disconnect() error
}

var _ Libvirt = (*libvirt.Libvirt)(nil)
