package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonMarshaler answers with proto field names, every scalar, enum and list
// even when empty, and leaves unset messages out (never null), as the
// OpenAPI document declares them; it reads bodies that may use unprefixed
// enum values.
type jsonMarshaler struct{ runtime.JSONPb }

func newJSONMarshaler() *jsonMarshaler {
	return &jsonMarshaler{runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

func (m *jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		raw, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		msg, ok := v.(proto.Message)
		if !ok {
			return json.Unmarshal(raw, v)
		}
		var tree any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&tree); err != nil {
			return fmt.Errorf("request body is not valid JSON: %w", err)
		}
		if err := normalizeJSON(msg.ProtoReflect().Descriptor(), tree); err != nil {
			return err
		}
		fixed, err := json.Marshal(tree)
		if err != nil {
			return err
		}
		return m.UnmarshalOptions.Unmarshal(fixed, msg)
	})
}

// queryParser accepts unprefixed enum values in query strings.
type queryParser struct{ runtime.DefaultQueryParser }

func (q *queryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	normalizeQuery(msg.ProtoReflect().Descriptor(), values)
	return q.DefaultQueryParser.Parse(msg, values, filter)
}
