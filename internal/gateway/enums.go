package gateway

import (
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

// normalizeJSON rewrites enum strings inside a decoded JSON value to their
// canonical names, following the message descriptor.
func normalizeJSON(md protoreflect.MessageDescriptor, v any) {
	obj, ok := v.(map[string]any)
	if !ok {
		return
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
							list[i] = enumValue(fd.Enum(), s)
						}
					}
				}
			} else if s, ok := val.(string); ok {
				obj[key] = enumValue(fd.Enum(), s)
			}
		case fd.Message() != nil:
			if fd.IsList() {
				if list, ok := val.([]any); ok {
					for _, e := range list {
						normalizeJSON(fd.Message(), e)
					}
				}
			} else if !fd.IsMap() {
				normalizeJSON(fd.Message(), val)
			}
		}
	}
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
