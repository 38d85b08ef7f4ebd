package fsm

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func decode(payload []byte, msg proto.Message) error {
	if err := proto.Unmarshal(payload, msg); err != nil {
		// A rejection: nothing has been written yet.
		return status.Errorf(codes.InvalidArgument, "decode %T: %v", msg, err)
	}
	return nil
}

// malformed is the error for an entry missing a required part. The API never
// writes such entries; the check keeps a bad entry from crashing every replica.
func malformed(what string) error {
	return status.Errorf(codes.InvalidArgument, "malformed raft entry: %s is missing", what)
}

func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }

func notFound(format string, args ...any) error {
	return status.Errorf(codes.NotFound, format, args...)
}

func ts(t *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return clone(t)
}
