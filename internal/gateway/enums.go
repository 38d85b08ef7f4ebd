package gateway

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// enumValue resolves a client's enum string: the exact name, the name
// without the enum's prefix (MODE_VIRTUALIZE → VIRTUALIZE), either in any
// case. It returns the canonical name, or s unchanged.
func enumValue(ed protoreflect.EnumDescriptor, s string) string {
	if ed.Values().ByName(protoreflect.Name(s)) != nil {
		return s
	}
	up := strings.ToUpper(s)
	if ed.Values().ByName(protoreflect.Name(up)) != nil {
		return up
	}
	prefix := enumPrefix(ed)
	if v := ed.Values().ByName(protoreflect.Name(prefix + up)); v != nil {
		return string(v.Name())
	}
	return s
}

// enumPrefix is the UPPER_SNAKE form of the enum's name plus "_".
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	var b strings.Builder
	for i, r := range string(ed.Name()) {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String()) + "_"
}

// allowedValues lists an enum's values in both accepted forms.
func allowedValues(ed protoreflect.EnumDescriptor) string {
	prefix := enumPrefix(ed)
	var names []string
	for i := 1; i < ed.Values().Len(); i++ {
		n := string(ed.Values().Get(i).Name())
		names = append(names, strings.TrimPrefix(n, prefix)+" ("+n+")")
	}
	return strings.Join(names, ", ")
}

// checkEnum reports an unknown enum string with the values allowed.
func checkEnum(field string, ed protoreflect.EnumDescriptor, s string) error {
	if ed.Values().ByName(protoreflect.Name(enumValue(ed, s))) == nil {
		return fmt.Errorf("%s: unknown value %q; allowed: %s", field, s, allowedValues(ed))
	}
	return nil
}

// normalizeJSON rewrites enum strings inside a decoded JSON value to their
// canonical names, following the message descriptor. It returns an error
// naming the allowed values for the first enum string it cannot resolve.
func normalizeJSON(md protoreflect.MessageDescriptor, v any) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for key, val := range obj {
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(key))
		}
		if fd == nil {
			continue
		}
		switch {
		case fd.Enum() != nil:
			if fd.IsList() {
				if list, ok := val.([]any); ok {
					for i, e := range list {
						if s, ok := e.(string); ok {
							if err := checkEnum(key, fd.Enum(), s); err != nil {
								return err
							}
							list[i] = enumValue(fd.Enum(), s)
						}
					}
				}
			} else if s, ok := val.(string); ok {
				if err := checkEnum(key, fd.Enum(), s); err != nil {
					return err
				}
				obj[key] = enumValue(fd.Enum(), s)
			}
		case fd.Message() != nil:
			if fd.IsList() {
				if list, ok := val.([]any); ok {
					for _, e := range list {
						if err := normalizeJSON(fd.Message(), e); err != nil {
							return err
						}
					}
				}
			} else if !fd.IsMap() {
				if err := normalizeJSON(fd.Message(), val); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// normalizeQuery rewrites enum values in query parameters (dotted paths).
func normalizeQuery(md protoreflect.MessageDescriptor, values map[string][]string) {
	for key, vals := range values {
		d := md
		var fd protoreflect.FieldDescriptor
		for _, part := range strings.Split(key, ".") {
			if d == nil {
				fd = nil
				break
			}
			fd = d.Fields().ByName(protoreflect.Name(part))
			if fd == nil {
				fd = d.Fields().ByJSONName(part)
			}
			if fd == nil {
				break
			}
			d = fd.Message()
		}
		if fd == nil || fd.Enum() == nil {
			continue
		}
		for i, v := range vals {
			vals[i] = enumValue(fd.Enum(), v)
		}
	}
}
