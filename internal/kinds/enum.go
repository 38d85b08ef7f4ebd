package kinds

import (
	"fmt"
	"strings"
)

// names is the text form of a kind's values: names[0] is the zero value
// (unknown, never valid), the others in order.
type names[T ~uint8] struct {
	kind  string
	names []string
}

func (n names[T]) name(v T) string {
	if int(v) < len(n.names) && v != 0 {
		return n.names[v]
	}
	return fmt.Sprintf("%s(%d)", n.kind, v)
}

func (n names[T]) valid(v T) bool { return v != 0 && int(v) < len(n.names) }

// allowed lists the names: "a, b or c".
func (n names[T]) allowed() string {
	list := n.names[1:]
	if len(list) == 1 {
		return list[0]
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}

func (n names[T]) parse(s string) (T, error) {
	for i, name := range n.names[1:] {
		if s == name {
			return T(i + 1), nil
		}
	}
	return 0, fmt.Errorf("%s %q must be %s", n.kind, s, n.allowed())
}

func (n names[T]) marshal(v T) ([]byte, error) {
	if !n.valid(v) {
		return nil, fmt.Errorf("%s: no value set (want %s)", n.kind, n.allowed())
	}
	return []byte(n.names[v]), nil
}
