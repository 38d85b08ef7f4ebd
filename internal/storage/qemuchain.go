package storage

import (
	"encoding/json"
	"errors"

	"github.com/restored/restored/internal/kinds"
)

// QEMUChain is a disk's chain as a QEMU block-driver tree (a json:
// filename for qemu-img), every layer's format and backing named, so QEMU
// probes nothing in the backup (a base qcow2 gets backing null: its header
// may name a file, which is never opened).
func QEMUChain(chain []Layer) (string, error) {
	node, err := QEMUChainTree(chain)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(node)
	return "json:" + string(b), err
}

// QEMUChainTree is the same tree as a value, to nest under another node
// (an overlay's backing).
func QEMUChainTree(chain []Layer) (map[string]any, error) {
	if len(chain) == 0 {
		return nil, errors.New("a disk without layers")
	}
	var node map[string]any
	for i := len(chain) - 1; i >= 0; i-- {
		l := chain[i]
		n := map[string]any{"driver": l.Format.String(), "file": map[string]any{"driver": "file", "filename": l.Path}}
		if l.Format == kinds.QCOW2 {
			if node != nil {
				n["backing"] = node
			} else {
				n["backing"] = nil
			}
		}
		node = n
	}
	return node, nil
}
