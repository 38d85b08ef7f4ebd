//go:build linux

package confine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// readACL returns a file's access ACL: its xattr, or the three entries its
// mode bits are when it has none.
func readACL(fd int, mode os.FileMode) ([]aclEntry, error) {
	buf := make([]byte, 4096)
	n, err := unix.Fgetxattr(fd, aclXattr, buf)
	if errors.Is(err, unix.ENODATA) {
		m := uint16(mode.Perm())
		return []aclEntry{{tagUserObj, m >> 6 & 7, noID}, {tagGroupObj, m >> 3 & 7, noID}, {tagOther, m & 7, noID}}, nil
	}
	if err != nil {
		return nil, err
	}
	buf = buf[:n]
	if len(buf) < 4 || binary.LittleEndian.Uint32(buf) != aclVersion || (len(buf)-4)%8 != 0 {
		return nil, fmt.Errorf("unreadable ACL of %d bytes", len(buf))
	}
	var out []aclEntry
	for i := 4; i < len(buf); i += 8 {
		out = append(out, aclEntry{binary.LittleEndian.Uint16(buf[i:]), binary.LittleEndian.Uint16(buf[i+2:]), binary.LittleEndian.Uint32(buf[i+4:])})
	}
	return out, nil
}

// writeACL stores entries, with the mask recomputed (the union of the
// group entries and the named ones). With no named entries left it removes
// the xattr, so the file is back to its mode bits alone.
func writeACL(fd int, entries []aclEntry) error {
	var kept []aclEntry
	var mask uint16
	named := false
	for _, e := range entries {
		switch e.tag {
		case tagMask:
			continue
		case tagUser, tagGroup:
			named = true
			mask |= e.perm
		case tagGroupObj:
			mask |= e.perm
		}
		kept = append(kept, e)
	}
	if !named {
		err := unix.Fremovexattr(fd, aclXattr)
		if errors.Is(err, unix.ENODATA) {
			return nil
		}
		return err
	}
	kept = append(kept, aclEntry{tagMask, mask, noID})
	sort.Slice(kept, func(i, j int) bool {
		if kept[i].tag != kept[j].tag {
			return kept[i].tag < kept[j].tag
		}
		return kept[i].id < kept[j].id
	})
	buf := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range kept {
		buf = binary.LittleEndian.AppendUint16(buf, e.tag)
		buf = binary.LittleEndian.AppendUint16(buf, e.perm)
		buf = binary.LittleEndian.AppendUint32(buf, e.id)
	}
	return unix.Fsetxattr(fd, aclXattr, buf, 0)
}

// editACL changes one named entry of path's ACL (perm 0 removes it),
// holding an exclusive flock on the file meanwhile: several agents (or
// restores) grant on the same recovery point's files.
func editACL(path string, tag uint16, id uint32, perm uint16) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer unix.Flock(fd, unix.LOCK_UN) //nolint:errcheck
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	entries, err := readACL(fd, fi.Mode())
	if err != nil {
		return fmt.Errorf("ACL of %s: %w", path, err)
	}
	var next []aclEntry
	for _, e := range entries {
		if e.tag == tag && e.id == id {
			continue
		}
		next = append(next, e)
	}
	if perm != 0 {
		next = append(next, aclEntry{tag, perm, id})
	}
	if err := writeACL(fd, next); err != nil {
		return fmt.Errorf("set the ACL of %s: %w", path, err)
	}
	return nil
}

// aclAllows says whether path's ACL has a named entry for id with perm.
func aclAllows(path string, tag uint16, id uint32, perm uint16) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	entries, err := readACL(int(f.Fd()), fi.Mode())
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.tag == tag && e.id == id && e.perm&perm == perm {
			return true, nil
		}
	}
	return false, nil
}
