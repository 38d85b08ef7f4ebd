package cli

import (
	"fmt"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// parseEnum accepts "running", "RUNNING" or "RESTORE_STATE_RUNNING".
func parseEnum(field string, ed protoreflect.EnumDescriptor, prefix, s string) (protoreflect.EnumNumber, error) {
	up := strings.ToUpper(strings.TrimSpace(s))
	for _, name := range []string{up, prefix + up} {
		if v := ed.Values().ByName(protoreflect.Name(name)); v != nil && v.Number() != 0 {
			return v.Number(), nil
		}
	}
	var allowed []string
	for i := 1; i < ed.Values().Len(); i++ {
		allowed = append(allowed, strings.ToLower(strings.TrimPrefix(string(ed.Values().Get(i).Name()), prefix)))
	}
	return 0, fmt.Errorf("--%s %q: allowed values are %s", field, s, strings.Join(allowed, ", "))
}

func parseState(s string) (restorev1.RestoreState, error) {
	if s == "" {
		return 0, nil
	}
	n, err := parseEnum("state", restorev1.RestoreState(0).Descriptor(), "RESTORE_STATE_", s)
	return restorev1.RestoreState(n), err
}
