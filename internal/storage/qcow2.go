package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// QCOW2Header is what we read from a qcow2 header before any tool opens the
// file: enough to refuse a backing file or an external data file that is not
// the declared chain.
type QCOW2Header struct {
	Version     uint32
	Size        int64  // virtual size in bytes
	BackingFile string // empty when none
	// BackingFormat is from the backing-format header extension, if any.
	BackingFormat string
	// DataFile is the external data file name (header extension), if any.
	DataFile string
	// IncompatibleFeatures is the raw bit field (version 3).
	IncompatibleFeatures uint64
}

const (
	qcow2Magic             = 0x514649fb // "QFI\xfb"
	extEnd                 = 0x00000000
	extBackingFormat       = 0xe2792aca
	extExternalDataFile    = 0x44415441 // "DATA"
	incompatDataFile       = 1 << 2
	maxBackingFileNameSize = 1023 // qemu's own limit
	maxHeaderBytes         = 64 << 10
	// qemu's own limits (block/qcow2.h), checked before qemu sees the file.
	minClusterBits    = 9
	maxClusterBits    = 21
	maxL1Bytes        = 32 << 20
	maxRefTableBytes  = 8 << 20
	maxSnapshots      = 65536
	maxRefcountOrder  = 6
	knownIncompatBits = 0x1f // dirty, corrupt, data file, compression type, extended L2
)

// ReadQCOW2Header parses the header at the start of r. It reads at most the
// first 64 KiB and trusts nothing in them.
func ReadQCOW2Header(r io.ReaderAt) (*QCOW2Header, error) {
	buf := make([]byte, maxHeaderBytes)
	n, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read qcow2 header: %w", err)
	}
	buf = buf[:n]
	if len(buf) < 72 {
		return nil, fmt.Errorf("not a qcow2 image: %d bytes is too short for a header", len(buf))
	}
	be := binary.BigEndian
	if be.Uint32(buf[0:4]) != qcow2Magic {
		return nil, fmt.Errorf("not a qcow2 image: bad magic")
	}
	h := &QCOW2Header{Version: be.Uint32(buf[4:8])}
	if h.Version != 2 && h.Version != 3 {
		return nil, fmt.Errorf("qcow2 version %d is not supported (2 or 3)", h.Version)
	}
	backingOffset := be.Uint64(buf[8:16])
	backingSize := be.Uint32(buf[16:20])
	size := be.Uint64(buf[24:32])
	if size > 1<<62 {
		return nil, fmt.Errorf("qcow2 virtual size %d is absurd", size)
	}
	h.Size = int64(size)
	if err := checkQCOW2Tables(buf); err != nil {
		return nil, err
	}
	headerLen := uint32(72)
	if h.Version == 3 {
		if len(buf) < 104 {
			return nil, fmt.Errorf("qcow2 v3 header is truncated")
		}
		h.IncompatibleFeatures = be.Uint64(buf[72:80])
		if unknown := h.IncompatibleFeatures &^ knownIncompatBits; unknown != 0 {
			return nil, fmt.Errorf("qcow2 image needs features this product does not know (incompatible bits %#x)", unknown)
		}
		if order := be.Uint32(buf[96:100]); order > maxRefcountOrder {
			return nil, fmt.Errorf("qcow2 refcount order %d is invalid (at most %d)", order, maxRefcountOrder)
		}
		headerLen = be.Uint32(buf[100:104])
		if headerLen < 104 || int(headerLen) > len(buf) {
			return nil, fmt.Errorf("qcow2 header length %d is invalid", headerLen)
		}
	}
	if backingOffset != 0 {
		if backingSize == 0 || backingSize > maxBackingFileNameSize {
			return nil, fmt.Errorf("qcow2 backing file name length %d is invalid", backingSize)
		}
		end := backingOffset + uint64(backingSize)
		if end > uint64(len(buf)) || backingOffset < uint64(headerLen) {
			return nil, fmt.Errorf("qcow2 backing file name lies outside the header area")
		}
		h.BackingFile = string(buf[backingOffset:end])
	}
	if err := h.readExtensions(buf, int(headerLen)); err != nil {
		return nil, err
	}
	if h.IncompatibleFeatures&incompatDataFile != 0 && h.DataFile == "" {
		// The data lives in a file the header does not name: qemu would look
		// for it next to the image. Refuse rather than guess.
		return nil, fmt.Errorf("qcow2 image uses an external data file without naming it")
	}
	return h, nil
}

// checkQCOW2Tables refuses what qemu would refuse or choke on, before it
// opens the file: a cluster size out of range, encryption, an L1 or refcount
// table too large or not cluster-aligned (a table that "overflows" the
// image), too many internal snapshots.
func checkQCOW2Tables(buf []byte) error {
	be := binary.BigEndian
	bits := be.Uint32(buf[20:24])
	if bits < minClusterBits || bits > maxClusterBits {
		return fmt.Errorf("qcow2 cluster bits %d out of %d..%d", bits, minClusterBits, maxClusterBits)
	}
	cluster := uint64(1) << bits
	if crypt := be.Uint32(buf[32:36]); crypt != 0 {
		return fmt.Errorf("qcow2 image is encrypted (method %d): recovery points are stored unencrypted", crypt)
	}
	l1Size, l1Off := uint64(be.Uint32(buf[36:40])), be.Uint64(buf[40:48])
	if l1Size*8 > maxL1Bytes {
		return fmt.Errorf("qcow2 L1 table of %d entries is larger than 32 MiB", l1Size)
	}
	if l1Size > 0 && l1Off%cluster != 0 {
		return fmt.Errorf("qcow2 L1 table offset %d is not cluster-aligned", l1Off)
	}
	refOff, refClusters := be.Uint64(buf[48:56]), uint64(be.Uint32(buf[56:60]))
	if refClusters*cluster > maxRefTableBytes {
		return fmt.Errorf("qcow2 refcount table of %d clusters is larger than 8 MiB", refClusters)
	}
	if refOff%cluster != 0 || refOff > 1<<62 {
		return fmt.Errorf("qcow2 refcount table offset %d is invalid", refOff)
	}
	if n := be.Uint32(buf[60:64]); n > maxSnapshots {
		return fmt.Errorf("qcow2 image has %d internal snapshots (at most %d)", n, maxSnapshots)
	}
	return nil
}

func (h *QCOW2Header) readExtensions(buf []byte, off int) error {
	be := binary.BigEndian
	for i := 0; i < 64; i++ {
		if off+8 > len(buf) {
			return fmt.Errorf("qcow2 header extensions run past the header area")
		}
		typ := be.Uint32(buf[off : off+4])
		length := int(be.Uint32(buf[off+4 : off+8]))
		off += 8
		if typ == extEnd {
			return nil
		}
		if length < 0 || off+length > len(buf) {
			return fmt.Errorf("qcow2 header extension 0x%x runs past the header area", typ)
		}
		data := buf[off : off+length]
		switch typ {
		case extBackingFormat:
			h.BackingFormat = string(data)
		case extExternalDataFile:
			h.DataFile = string(data)
		}
		off += (length + 7) &^ 7 // padded to 8 bytes
	}
	return fmt.Errorf("qcow2 header has too many extensions")
}
