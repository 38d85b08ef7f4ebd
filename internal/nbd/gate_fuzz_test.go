package nbd

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The gate reads a client's options before it knows who the client is:
// whatever the bytes, it neither panics nor takes more than maxOptionBytes
// for one option, and what it read is what was sent.
func FuzzGateOptions(f *testing.F) {
	f.Add(option{opt: optStartTLS}.bytes())
	f.Add(append(option{opt: optList}.bytes(), option{opt: optGo, data: appendString32(nil, "export")}.bytes()...))
	huge := binary.BigEndian.AppendUint64(nil, magicIHaveOpt)
	huge = binary.BigEndian.AppendUint32(huge, optGo)
	f.Add(binary.BigEndian.AppendUint32(huge, 0xffffffff))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			o, err := readOption(r)
			if err != nil {
				return
			}
			if len(o.data) > maxOptionBytes {
				t.Fatalf("took an option of %d bytes", len(o.data))
			}
			again, err := readOption(bytes.NewReader(o.bytes()))
			if err != nil || again.opt != o.opt || !bytes.Equal(again.data, o.data) {
				t.Fatalf("option %d does not read back: %v", o.opt, err)
			}
		}
	})
}
