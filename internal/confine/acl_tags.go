package confine

// The POSIX ACL extended attribute (linux/posix_acl_xattr.h): a version,
// then entries of tag, permissions and id, little-endian, sorted by tag
// then id.
const (
	aclXattr   = "system.posix_acl_access"
	aclVersion = 2

	tagUserObj  = 0x01
	tagUser     = 0x02
	tagGroupObj = 0x04
	tagGroup    = 0x08
	tagMask     = 0x10
	tagOther    = 0x20

	noID = 0xffffffff

	permRead    = 4
	permExecute = 1
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}
