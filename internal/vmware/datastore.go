package vmware

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
)

// DatastoreFile is a file on a datastore as vSphere's datastore file
// service (https://VCENTER/folder/PATH?dcPath=…&dsName=…) serves it, with
// the session's cookie: GET with Range reads any part of it, HEAD its size.
// No proprietary library is needed to read a disk this way.
type DatastoreFile struct {
	d   *Driver
	url *url.URL
	// Name is the file as a datastore path ("[ds] vm/vm-flat.vmdk").
	Name string
}

// File is a datastore path of the datacenter dcPath (its inventory path).
func (d *Driver) File(dcPath, datastorePath string) (*DatastoreFile, error) {
	var p object.DatastorePath
	if !p.FromString(datastorePath) || p.Datastore == "" || p.Path == "" {
		return nil, fmt.Errorf("%q is not a datastore path ([datastore] dir/file)", datastorePath)
	}
	return &DatastoreFile{d: d, url: object.NewDatastoreURL(*d.c.URL(), dcPath, p.Datastore, p.Path), Name: p.String()}, nil
}

// Sibling is the file name in the same directory as f.
func (f *DatastoreFile) Sibling(name string) *DatastoreFile {
	u := *f.url
	u.Path = path.Join(path.Dir(u.Path), name)
	var p object.DatastorePath
	p.FromString(f.Name)
	p.Path = path.Join(path.Dir(p.Path), name)
	return &DatastoreFile{d: f.d, url: &u, Name: p.String()}
}

func (f *DatastoreFile) do(ctx context.Context, method string, headers map[string]string) (*http.Response, error) {
	res, err := f.d.c.Client.DownloadRequest(ctx, f.url, &soap.Download{Method: method, Headers: headers})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, f.Name, err)
	}
	return res, nil
}

// Size is the file's size in bytes, from a ranged GET of its first byte
// (the datastore service answers HEAD without a length on some versions).
func (f *DatastoreFile) Size(ctx context.Context) (int64, error) {
	res, err := f.do(ctx, http.MethodGet, map[string]string{"Range": "bytes=0-0"})
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1))
	switch res.StatusCode {
	case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
		// Content-Range: bytes 0-0/SIZE, or bytes */SIZE for an empty file.
		cr := res.Header.Get("Content-Range")
		_, total, ok := strings.Cut(cr, "/")
		if n, err := strconv.ParseInt(total, 10, 64); ok && err == nil && n >= 0 {
			return n, nil
		}
		return 0, fmt.Errorf("the datastore file %s: a range answer without a size (Content-Range %q)", f.Name, cr)
	case http.StatusOK: // the server ignored the range: the whole file came
		if res.ContentLength >= 0 {
			return res.ContentLength, nil
		}
	}
	return 0, fmt.Errorf("the datastore file %s: %s", f.Name, res.Status)
}

// ReadAt reads len(p) bytes at off with one ranged GET.
func (f *DatastoreFile) ReadAt(ctx context.Context, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	res, err := f.do(ctx, http.MethodGet, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1)})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusPartialContent:
	case res.StatusCode == http.StatusOK && off == 0:
		// The whole file: its first bytes are the ones asked for.
	default:
		return fmt.Errorf("read %d bytes at %d of %s: %s", len(p), off, f.Name, res.Status)
	}
	if _, err := io.ReadFull(res.Body, p); err != nil {
		return fmt.Errorf("read %d bytes at %d of %s: %w", len(p), off, f.Name, err)
	}
	return nil
}

// maxDescriptor bounds a VMDK descriptor (they are a few hundred bytes).
const maxDescriptor = 64 << 10

// Descriptor is what a VMDK descriptor says of a disk.
type Descriptor struct {
	CreateType string
	// Extent is the one extent's file name (relative to the descriptor).
	Extent string
	// Size is the extent's size in bytes.
	Size int64
}

var extentLine = regexp.MustCompile(`^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)\s+"([^"]+)"(?:\s+(\d+))?\s*$`)

// ParseDescriptor reads a VMDK descriptor and accepts what Restored reads
// through the datastore: one flat extent (createType vmfs or
// monolithicFlat) with no parent. Sparse and delta disks, several extents
// and raw device mappings are refused with what they are.
func ParseDescriptor(b []byte) (Descriptor, error) {
	if len(b) > maxDescriptor {
		return Descriptor{}, fmt.Errorf("a VMDK descriptor of %d bytes: not a descriptor (a sparse VMDK has its data in the same file)", len(b))
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("#")) && !bytes.Contains(b, []byte("createType")) {
		return Descriptor{}, fmt.Errorf("not a VMDK descriptor (%d bytes starting %q)", len(b), b[:min(len(b), 32)])
	}
	var d Descriptor
	var extents []string
	parent := ""
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.Contains(k, "\"") {
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.TrimSpace(k) {
			case "createType":
				d.CreateType = v
			case "parentCID":
				parent = v
			}
			continue
		}
		m := extentLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		extents = append(extents, m[0])
		sectors, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil || sectors <= 0 || sectors > (64<<40)/512 {
			return Descriptor{}, fmt.Errorf("the extent %q has a size no disk has", line)
		}
		if t := strings.ToUpper(m[3]); t != "VMFS" && t != "FLAT" {
			return Descriptor{}, fmt.Errorf("the extent %q is %s: only flat extents (VMFS, FLAT) are read", line, m[3])
		}
		if m[5] != "" && m[5] != "0" {
			return Descriptor{}, fmt.Errorf("the extent %q starts at sector %s of its file: only extents at 0 are read", line, m[5])
		}
		if strings.Contains(m[4], "/") || m[4] == ".." {
			return Descriptor{}, fmt.Errorf("the extent %q names a file outside the disk's directory", line)
		}
		d.Extent, d.Size = m[4], sectors*512
	}
	switch {
	case d.CreateType != "vmfs" && d.CreateType != "monolithicFlat":
		return Descriptor{}, fmt.Errorf("the disk's createType is %q: only flat disks (vmfs, monolithicFlat) are read through the datastore", d.CreateType)
	case parent != "" && !strings.EqualFold(parent, "ffffffff"):
		return Descriptor{}, fmt.Errorf("the disk is a delta on a parent (parentCID %s): only base disks are read", parent)
	case len(extents) != 1:
		return Descriptor{}, fmt.Errorf("the disk has %d extents: only disks of one extent are read", len(extents))
	}
	return d, nil
}

// OpenDisk finds the flat file that holds a disk's data from its
// descriptor, and checks that it is as large as the disk.
func (d *Driver) OpenDisk(ctx context.Context, dcPath string, disk Disk) (*DatastoreFile, error) {
	if disk.Parent != "" {
		return nil, fmt.Errorf("disk %s (%s) is a delta on %s: the VM had a snapshot before Restored's; only base disks are read (remove or consolidate the VM's other snapshots)", disk.Name, disk.File, disk.Parent)
	}
	desc, err := d.File(dcPath, disk.File)
	if err != nil {
		return nil, err
	}
	n, err := desc.Size(ctx)
	if err != nil {
		return nil, err
	}
	if n > maxDescriptor {
		return nil, fmt.Errorf("disk %s: %s has %d bytes: not a descriptor of a flat disk", disk.Name, disk.File, n)
	}
	b := make([]byte, n)
	if err := desc.ReadAt(ctx, b, 0); err != nil {
		return nil, err
	}
	dd, err := ParseDescriptor(b)
	if err != nil {
		return nil, fmt.Errorf("disk %s (%s): %w", disk.Name, disk.File, err)
	}
	if dd.Size != disk.Capacity {
		return nil, fmt.Errorf("disk %s: its descriptor gives %d bytes, vSphere %d", disk.Name, dd.Size, disk.Capacity)
	}
	flat := desc.Sibling(dd.Extent)
	size, err := flat.Size(ctx)
	if err != nil {
		return nil, err
	}
	if size != disk.Capacity {
		return nil, fmt.Errorf("disk %s: its extent %s has %d bytes, the disk %d", disk.Name, flat.Name, size, disk.Capacity)
	}
	return flat, nil
}
