package diskview

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/partition"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// sector is the logical sector size the partition tables are read with.
const sector = 512

// Volume is a partition (or a whole disk without a partition table) and
// the filesystem found on it.
type Volume struct {
	// Name is "part1", "part2", … by the table's index, or "disk" for a
	// filesystem on the whole disk.
	Name        string
	Start, Size int64
	// FS is the filesystem found (ext4, xfs, ntfs, fat), "" when none is;
	// Problem says what could not be read.
	FS      string
	Problem string
}

// Volumes lists a disk's volumes: its partitions (GPT, else MBR), or the
// whole disk when it has no table.
func Volumes(r io.ReaderAt, size int64) ([]Volume, error) {
	table, err := partition.Read(&readerStorage{r: r, size: size}, sector, sector)
	if err != nil {
		v := Volume{Name: "disk", Size: size}
		v.FS = sniff(io.NewSectionReader(r, 0, size))
		if v.FS == "" {
			return nil, fmt.Errorf("%w: neither a partition table (GPT, MBR) nor a filesystem (ext4, XFS, NTFS, FAT) at the start of the disk", ErrDamaged)
		}
		return []Volume{v}, nil
	}
	var out []Volume
	for _, p := range table.GetPartitions() {
		if skipPartition(p) {
			continue
		}
		v := Volume{Name: fmt.Sprintf("part%d", p.GetIndex()), Start: p.GetStart(), Size: p.GetSize()}
		switch {
		case v.Start < 0 || v.Size <= 0 || v.Start > size || v.Size > size-v.Start:
			v.Problem = fmt.Sprintf("the partition (%d bytes at %d) lies outside the disk (%d bytes)", v.Size, v.Start, size)
		default:
			if v.FS = sniff(io.NewSectionReader(r, v.Start, v.Size)); v.FS == "" {
				v.Problem = "no filesystem this reader understands (ext4, XFS, NTFS, FAT)"
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// skipPartition leaves out a table's empty slots and MBR extended
// containers (their logical partitions are listed themselves).
func skipPartition(p interface{ GetSize() int64 }) bool {
	switch x := p.(type) {
	case *gpt.Partition:
		return x.Type == gpt.Unused || x.Size == 0
	case *mbr.Partition:
		return x.Type == mbr.Empty || x.Type == 0x05 || x.Type == 0x0f || x.Type == 0x85 || x.Size == 0
	}
	return p.GetSize() <= 0
}

// sniff names the filesystem a volume starts with, by its magic numbers.
func sniff(r *io.SectionReader) string {
	head := make([]byte, 4096)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case len(head) >= 4 && bytes.Equal(head[:4], []byte("XFSB")):
		return "xfs"
	case len(head) >= 11 && bytes.Equal(head[3:11], []byte("NTFS    ")):
		return "ntfs"
	case len(head) >= 1082 && binary.LittleEndian.Uint16(head[1080:]) == 0xEF53:
		return "ext4" // ext2/3/4: one reader
	case len(head) >= 512 && head[510] == 0x55 && head[511] == 0xAA &&
		(bytes.Equal(head[82:87], []byte("FAT32")) || bytes.Equal(head[54:59], []byte("FAT12")) || bytes.Equal(head[54:59], []byte("FAT16"))):
		return "fat"
	}
	return ""
}

// readerStorage is go-diskfs's view of a read-only io.ReaderAt.
type readerStorage struct {
	r    io.ReaderAt
	size int64
	off  int64
}

func (s *readerStorage) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }
func (s *readerStorage) Read(p []byte) (int, error) {
	n, err := s.r.ReadAt(p, s.off)
	s.off += int64(n)
	return n, err
}
func (s *readerStorage) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += s.off
	case io.SeekEnd:
		off += s.size
	}
	if off < 0 {
		return 0, fs.ErrInvalid
	}
	s.off = off
	return off, nil
}
func (s *readerStorage) Close() error                            { return nil }
func (s *readerStorage) Stat() (fs.FileInfo, error)              { return nil, fs.ErrInvalid }
func (s *readerStorage) Sys() (*os.File, error)                  { return nil, fs.ErrInvalid }
func (s *readerStorage) Writable() (backend.WritableFile, error) { return nil, fs.ErrPermission }
func (s *readerStorage) Path() string                            { return "" }
