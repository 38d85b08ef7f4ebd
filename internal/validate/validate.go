// Package validate checks client input before anything is written: ranges,
// enum values, identifiers and free text. Every failure is an
// InvalidArgument status whose message names the field and what is allowed.
package validate

import (
	"unicode"

	"github.com/restored/restored/internal/kinds"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Limits.
const (
	MinVCPUs      = 1
	MaxVCPUs      = 64
	MinMemoryMiB  = 96
	MaxMemoryMiB  = 1048576
	MaxTTLSeconds = 30 * 24 * 3600
	MaxNameLen    = 253
	MaxPageSize   = 1000
	DefaultPage   = 100
)

// Errorf returns an InvalidArgument status.
func Errorf(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// DNSLabel checks a tenant or host id: a lowercase DNS label.
func DNSLabel(field, v string) error {
	if !kinds.IsDNSLabel(v) {
		return Errorf("%s %q must be a lowercase DNS label: 1-63 characters a-z, 0-9 and '-', not starting or ending with '-'", field, v)
	}
	return nil
}

// Required checks free text that must be given, such as an id: not empty,
// at most 253 characters, no control characters.
func Required(field, v string) error {
	if v == "" {
		return Errorf("%s is required", field)
	}
	return text(field, v)
}

// Optional checks free text that may be left out, such as a display name
// or a filter: empty, or at most 253 characters without control characters.
func Optional(field, v string) error {
	if v == "" {
		return nil
	}
	return text(field, v)
}

func text(field, v string) error {
	if len(v) > MaxNameLen {
		return Errorf("%s is %d characters long; at most %d are allowed", field, len(v), MaxNameLen)
	}
	for i, r := range v {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return Errorf("%s has a control or invalid character at byte %d; only printable text is allowed", field, i)
		}
	}
	return nil
}

// Range checks lo <= v <= hi.
func Range(field string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return Errorf("%s must be between %d and %d, got %d", field, lo, hi, v)
	}
	return nil
}

// Enum checks that v is a defined value of its enum, other than the zero
// (unspecified) value.
func Enum(field string, v protoreflect.Enum) error {
	if v.Number() == 0 {
		return Errorf("%s is required; allowed: %s", field, enumNames(v.Descriptor()))
	}
	return EnumOrUnset(field, v)
}

// EnumOrUnset checks that v is a defined value of its enum; the zero value
// (left out) is allowed.
func EnumOrUnset(field string, v protoreflect.Enum) error {
	d := v.Descriptor()
	if n := v.Number(); d.Values().ByNumber(n) == nil {
		return Errorf("%s: unknown value %d; allowed: %s", field, n, enumNames(d))
	}
	return nil
}

func enumNames(d protoreflect.EnumDescriptor) string {
	s := ""
	for i := 1; i < d.Values().Len(); i++ {
		if s != "" {
			s += ", "
		}
		s += string(d.Values().Get(i).Name())
	}
	return s
}

// PageSize returns the effective page size.
func PageSize(v int32) (int, error) {
	switch {
	case v < 0:
		return 0, Errorf("page_size must not be negative, got %d", v)
	case v == 0:
		return DefaultPage, nil
	case v > MaxPageSize:
		return MaxPageSize, nil
	}
	return int(v), nil
}

// Item names item i of a list in a refusal about it ("items[2]: …"),
// keeping its code.
func Item(i int, err error) error {
	st := status.Convert(err)
	return status.Errorf(st.Code(), "items[%d]: %s", i, st.Message())
}
