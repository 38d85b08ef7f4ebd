// Package vhdx reads VHDX disk images (Microsoft's [MS-VHDX] format, what
// Hyper-V keeps its disks in): the headers, the region table, the
// metadata and the block allocation table, with every checksum and bound
// checked, so that a snapshot of a Hyper-V guest is read (and served as
// NBD) without Windows' own driver, and a hostile file yields an error,
// never a read outside it. Fixed and dynamic disks are read; differencing
// disks (a checkpoint's .avhdx) and files with a log to replay are refused
// with what they are. It writes nothing.
package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	kib = 1 << 10
	mib = 1 << 20

	headerOffset1 = 64 * kib
	headerOffset2 = 128 * kib
	headerSize    = 4 * kib
	regionOffset1 = 192 * kib
	regionOffset2 = 256 * kib
	regionSize    = 64 * kib
	maxEntries    = 2047

	// MaxVirtualSize is the largest disk the format allows (64 TiB).
	MaxVirtualSize = 64 << 40
)

// Block states of the BAT ([MS-VHDX] 2.5.1.1).
const (
	blockNotPresent       = 0
	blockUndefined        = 1
	blockZero             = 2
	blockUnmapped         = 3
	blockFullyPresent     = 6
	blockPartiallyPresent = 7
)

// guid is a GUID as VHDX stores it (the first three fields little-endian).
type guid [16]byte

func mustGUID(s string) guid {
	var g guid
	var a uint32
	var b, c uint16
	var d [8]byte
	if _, err := fmt.Sscanf(s, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", &a, &b, &c,
		&d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6], &d[7]); err != nil {
		panic(err)
	}
	binary.LittleEndian.PutUint32(g[0:], a)
	binary.LittleEndian.PutUint16(g[4:], b)
	binary.LittleEndian.PutUint16(g[6:], c)
	copy(g[8:], d[:])
	return g
}

var (
	regionBAT      = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	regionMetadata = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	metaFileParams = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	metaDiskSize   = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	metaSectorSize = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum checks a structure whose CRC-32C is at offset 4, computed with
// that field zero.
func checksum(b []byte) bool {
	want := binary.LittleEndian.Uint32(b[4:])
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint32(c[4:], 0)
	return crc32.Checksum(c, castagnoli) == want
}

// Image is an open VHDX file.
type Image struct {
	f          io.ReaderAt
	fileSize   int64
	size       int64
	blockSize  int64
	sector     int64
	chunkRatio int64
	bat        []uint64
	// Fixed says every block is allocated at creation (a fixed disk).
	Fixed bool
}

// Open reads the structures of a VHDX file of fileSize bytes.
func Open(f io.ReaderAt, fileSize int64) (*Image, error) {
	im := &Image{f: f, fileSize: fileSize}
	sig := make([]byte, 8)
	if err := im.read(sig, 0); err != nil || string(sig) != "vhdxfile" {
		return nil, errors.New("not a VHDX file (no vhdxfile signature)")
	}
	if err := im.header(); err != nil {
		return nil, err
	}
	bat, meta, err := im.regions()
	if err != nil {
		return nil, err
	}
	if err := im.metadata(meta); err != nil {
		return nil, err
	}
	if err := im.readBAT(bat); err != nil {
		return nil, err
	}
	return im, nil
}

// read reads len(p) bytes at off, which must lie inside the file.
func (im *Image) read(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > im.fileSize {
		return fmt.Errorf("the VHDX points at %d+%d, outside its %d bytes", off, len(p), im.fileSize)
	}
	_, err := im.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// header picks the current header (the valid one with the higher
// sequence number) and refuses a file with a log to replay.
func (im *Image) header() error {
	var best []byte
	var seq uint64
	for _, off := range []int64{headerOffset1, headerOffset2} {
		b := make([]byte, headerSize)
		if err := im.read(b, off); err != nil {
			continue
		}
		if string(b[:4]) != "head" || !checksum(b) {
			continue
		}
		if s := binary.LittleEndian.Uint64(b[8:]); best == nil || s > seq {
			best, seq = b, s
		}
	}
	if best == nil {
		return errors.New("the VHDX has no valid header (both are corrupt)")
	}
	if v := binary.LittleEndian.Uint16(best[66:]); v != 1 {
		return fmt.Errorf("VHDX version %d (only 1 is defined)", v)
	}
	if !bytes.Equal(best[48:64], make([]byte, 16)) {
		return errors.New("the VHDX has a log to replay (it was not closed cleanly): let Hyper-V open it once")
	}
	return nil
}

type region struct {
	off    int64
	length int64
}

// regions reads the region table and returns the BAT's and the metadata's.
func (im *Image) regions() (bat, meta region, err error) {
	for _, off := range []int64{regionOffset1, regionOffset2} {
		b := make([]byte, regionSize)
		if err := im.read(b, off); err != nil || string(b[:4]) != "regi" || !checksum(b) {
			continue
		}
		n := binary.LittleEndian.Uint32(b[8:])
		if n > maxEntries {
			return bat, meta, fmt.Errorf("the VHDX region table claims %d entries (at most %d)", n, maxEntries)
		}
		for i := range int(n) {
			e := b[16+32*i : 16+32*(i+1)]
			var g guid
			copy(g[:], e[:16])
			r := region{off: int64(binary.LittleEndian.Uint64(e[16:])), length: int64(binary.LittleEndian.Uint32(e[24:]))}
			required := binary.LittleEndian.Uint32(e[28:])&1 != 0
			if r.off%mib != 0 || r.length%mib != 0 || r.off < mib || r.off+r.length > im.fileSize {
				return bat, meta, fmt.Errorf("a VHDX region at %d+%d is not inside the file on 1 MiB boundaries", r.off, r.length)
			}
			switch g {
			case regionBAT:
				bat = r
			case regionMetadata:
				meta = r
			default:
				if required {
					return bat, meta, fmt.Errorf("the VHDX has a required region this reader does not know (%x)", g)
				}
			}
		}
		if bat.length == 0 || meta.length == 0 {
			return bat, meta, errors.New("the VHDX region table lacks the BAT or the metadata")
		}
		return bat, meta, nil
	}
	return bat, meta, errors.New("the VHDX has no valid region table (both are corrupt)")
}

// metadata reads the block size, the virtual size and the sector size.
func (im *Image) metadata(r region) error {
	b := make([]byte, min(r.length, 1*mib))
	if err := im.read(b, r.off); err != nil {
		return err
	}
	if string(b[:8]) != "metadata" {
		return errors.New("the VHDX metadata region has no metadata signature")
	}
	n := int(binary.LittleEndian.Uint16(b[10:]))
	if n > maxEntries || 32+32*n > len(b) {
		return fmt.Errorf("the VHDX metadata table claims %d entries", n)
	}
	item := func(id guid, size int) ([]byte, error) {
		for i := range n {
			e := b[32+32*i : 32+32*(i+1)]
			if !bytes.Equal(e[:16], id[:]) {
				continue
			}
			off, length := int(binary.LittleEndian.Uint32(e[16:])), int(binary.LittleEndian.Uint32(e[20:]))
			if length < size || off < 64*kib || off+size > len(b) {
				return nil, fmt.Errorf("a VHDX metadata item lies outside its region (%d+%d)", off, length)
			}
			return b[off : off+size], nil
		}
		return nil, fmt.Errorf("the VHDX metadata lacks the item %x", id)
	}
	params, err := item(metaFileParams, 8)
	if err != nil {
		return err
	}
	im.blockSize = int64(binary.LittleEndian.Uint32(params))
	flags := binary.LittleEndian.Uint32(params[4:])
	if flags&2 != 0 {
		return errors.New("a differencing VHDX (a checkpoint's .avhdx, on a parent): read the disk through its chain, or merge the checkpoint")
	}
	im.Fixed = flags&1 != 0
	if im.blockSize < mib || im.blockSize > 256*mib || im.blockSize&(im.blockSize-1) != 0 {
		return fmt.Errorf("a VHDX block size of %d bytes (1 MiB to 256 MiB, a power of two)", im.blockSize)
	}
	size, err := item(metaDiskSize, 8)
	if err != nil {
		return err
	}
	im.size = int64(binary.LittleEndian.Uint64(size))
	if im.size <= 0 || im.size > MaxVirtualSize {
		return fmt.Errorf("a VHDX of %d virtual bytes (at most 64 TiB)", im.size)
	}
	sector, err := item(metaSectorSize, 4)
	if err != nil {
		return err
	}
	im.sector = int64(binary.LittleEndian.Uint32(sector))
	if im.sector != 512 && im.sector != 4096 {
		return fmt.Errorf("a VHDX logical sector size of %d (512 or 4096)", im.sector)
	}
	if im.size%im.sector != 0 {
		return fmt.Errorf("a VHDX of %d bytes is not a whole number of %d-byte sectors", im.size, im.sector)
	}
	im.chunkRatio = (int64(1) << 23) * im.sector / im.blockSize
	return nil
}

// blocks is the number of payload blocks.
func (im *Image) blocks() int64 { return (im.size + im.blockSize - 1) / im.blockSize }

// batIndex is the BAT entry of payload block i (a sector bitmap entry
// follows every chunkRatio payload entries).
func (im *Image) batIndex(i int64) int64 { return i + i/im.chunkRatio }

func (im *Image) readBAT(r region) error {
	entries := im.batIndex(im.blocks()-1) + 1
	if entries*8 > r.length {
		return fmt.Errorf("the VHDX BAT has room for %d entries, the disk needs %d", r.length/8, entries)
	}
	b := make([]byte, entries*8)
	if err := im.read(b, r.off); err != nil {
		return err
	}
	im.bat = make([]uint64, entries)
	for i := range im.bat {
		im.bat[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	for i := range im.blocks() {
		state, off := im.entry(i)
		switch state {
		case blockNotPresent, blockUndefined, blockZero, blockUnmapped:
		case blockFullyPresent:
			if off < mib || off+im.blockSize > im.fileSize {
				return fmt.Errorf("VHDX block %d is said to be at %d, outside the file", i, off)
			}
		case blockPartiallyPresent:
			return fmt.Errorf("VHDX block %d is partially present, which only a differencing disk has", i)
		default:
			return fmt.Errorf("VHDX block %d has the unknown state %d", i, state)
		}
	}
	return nil
}

func (im *Image) entry(i int64) (state int, off int64) {
	e := im.bat[im.batIndex(i)]
	return int(e & 7), int64(e>>20) * mib
}

// Size is the disk's virtual size in bytes.
func (im *Image) Size() int64 { return im.size }

// ReadAt reads the virtual disk: blocks not present read as zeros.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > im.size {
		return 0, fmt.Errorf("a read of %d bytes at %d is outside the %d-byte disk", len(p), off, im.size)
	}
	done := 0
	for done < len(p) {
		at := off + int64(done)
		block, in := at/im.blockSize, at%im.blockSize
		n := int(min(int64(len(p)-done), im.blockSize-in))
		state, boff := im.entry(block)
		if state == blockFullyPresent {
			if err := im.read(p[done:done+n], boff+in); err != nil {
				return done, err
			}
		} else {
			clear(p[done : done+n])
		}
		done += n
	}
	return done, nil
}

// Extent is a byte range of the virtual disk.
type Extent struct{ Offset, Length int64 }

// Allocated lists the ranges that hold data (fully present blocks),
// adjacent ones merged: what a full backup reads.
func (im *Image) Allocated() []Extent {
	var out []Extent
	for i := range im.blocks() {
		if state, _ := im.entry(i); state != blockFullyPresent {
			continue
		}
		e := Extent{Offset: i * im.blockSize, Length: min(im.blockSize, im.size-i*im.blockSize)}
		if n := len(out); n > 0 && out[n-1].Offset+out[n-1].Length == e.Offset {
			out[n-1].Length += e.Length
			continue
		}
		out = append(out, e)
	}
	return out
}

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
