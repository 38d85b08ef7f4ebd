package nbd

// Wire constants from the NBD protocol document.
const (
	magicNBD        = 0x4e42444d41474943 // "NBDMAGIC"
	magicIHaveOpt   = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply   = 0x0003e889045565a9
	magicRequest    = 0x25609513
	magicSimple     = 0x67446698
	magicStructured = 0x668e33ef

	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	optExportName       = 1
	optAbort            = 2
	optList             = 3
	optStartTLS         = 5
	optGo               = 7
	optStructuredReply  = 8
	optSetMetaContext   = 10
	repAck              = 1
	repInfo             = 3
	repMetaContext      = 4
	repErrBit           = 1 << 31
	repErrUnsup         = repErrBit | 1
	repErrPolicy        = repErrBit | 2
	repErrInvalid       = repErrBit | 3
	repErrTLSReqd       = repErrBit | 5
	repErrUnknown       = repErrBit | 6
	maxOptionBytes      = 64 << 10
	infoExport          = 0
	transmitReadOnly    = 1 << 1
	cmdRead             = 0
	cmdWrite            = 1
	cmdDisc             = 2
	cmdFlush            = 3
	cmdBlockStatus      = 7
	replyFlagDone       = 1 << 0
	replyNone           = 0
	replyOffsetData     = 1
	replyOffsetHole     = 2
	replyBlockStatus    = 5
	replyErrBit         = 1 << 15
	maxRequest          = 32 << 20 // QEMU's NBD_MAX_BUFFER_SIZE
	maxOptionReplyBytes = 1 << 20
)

// Metadata contexts.
const (
	// BaseAllocation reports holes (StateHole) and zeroes (StateZero).
	BaseAllocation = "base:allocation"
	// DirtyBitmapPrefix + a bitmap name reports dirty blocks (StateDirty).
	DirtyBitmapPrefix = "qemu:dirty-bitmap:"
)

// Extent flags. base:allocation uses StateHole and StateZero;
// qemu:dirty-bitmap:* uses StateDirty.
const (
	StateHole  = 1 << 0
	StateZero  = 1 << 1
	StateDirty = 1 << 0
)
