package api

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/restored/restored/internal/audit"
	"github.com/restored/restored/internal/liveness"
	"github.com/restored/restored/internal/mdkeys"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Forwarder sends calls that must run on the leader to the leader.
type Forwarder struct {
	deps  *Deps
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewForwarder returns a forwarder.
func NewForwarder(d *Deps) *Forwarder {
	return &Forwarder{deps: d, conns: map[string]*grpc.ClientConn{}}
}

// Close closes the connections to leaders.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = map[string]*grpc.ClientConn{}
}

func wantsLinearizable(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(mdkeys.Consistency) {
		if strings.EqualFold(v, "linearizable") || strings.EqualFold(v, "leader") {
			return true
		}
	}
	return false
}

func wasForwarded(ctx context.Context) bool { return forwardedBy(ctx) != "" }

// forwardedBy is the server that forwarded the call ("" when none did).
// Only believe it where the caller's server certificate was checked.
func forwardedBy(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(mdkeys.Forwarded); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (f *Forwarder) leaderConn() (*grpc.ClientConn, error) {
	id, _ := f.deps.Node.Leader()
	if id == "" {
		return nil, status.Error(codes.Unavailable, "no raft leader is known right now (election in progress?); retry in a moment")
	}
	srv := f.deps.Store.Read(nil).Server(id)
	if srv == nil || srv.GrpcAddress == "" {
		return nil, status.Errorf(codes.Unavailable, "leader %s has not published its gRPC address yet; retry in a moment", id)
	}
	c, err := f.conn(srv.GrpcAddress)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "connect to leader %s at %s: %v", id, srv.GrpcAddress, err)
	}
	return c, nil
}

// conn returns a (shared) connection to another server.
func (f *Forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, append(liveness.DialOptions(), grpc.WithTransportCredentials(f.deps.PeerCreds))...)
	if err != nil {
		return nil, err
	}
	f.conns[addr] = c
	return c, nil
}

// forwardedContext passes the caller's metadata on, marked as forwarded by
// this server.
func forwardedContext(ctx context.Context, serverID string) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	md = md.Copy()
	md.Set(mdkeys.Forwarded, serverID)
	// Only this server says which agent it vouches for, and where the call
	// came from.
	delete(md, mdkeys.AgentHost)
	md.Set(mdkeys.Source, audit.Source(ctx))
	if h := vouchedHost(ctx); h != "" {
		md.Set(mdkeys.AgentHost, h)
	}
	for _, k := range []string{":authority", "content-type", "user-agent"} {
		delete(md, k)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// responseFor returns an empty response message for a full method name.
func responseFor(method string) (proto.Message, error) {
	parts := strings.Split(strings.TrimPrefix(method, "/"), "/")
	if len(parts) != 2 {
		return nil, status.Errorf(codes.Internal, "bad method %q", method)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(parts[0]))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "unknown service %q", parts[0])
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, status.Errorf(codes.Internal, "%q is not a service", parts[0])
	}
	md := sd.Methods().ByName(protoreflect.Name(parts[1]))
	if md == nil {
		return nil, status.Errorf(codes.Internal, "unknown method %q", method)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "unknown message %q", md.Output().FullName())
	}
	return mt.New().Interface(), nil
}

// forward runs the call on the leader with the caller's metadata.
func (f *Forwarder) forward(ctx context.Context, method string, req any) (any, error) {
	if wasForwarded(ctx) {
		return nil, status.Error(codes.Unavailable, "leadership moved while the request was forwarded; retry")
	}
	resp, err := responseFor(method)
	if err != nil {
		return nil, err
	}
	var lastErr error
	// Retry briefly across an election: the caller never needs to know who leads.
	deadline := time.Now().Add(5 * time.Second)
	for attempt := 0; ; attempt++ {
		if f.deps.Node.IsLeader() {
			return nil, errRunLocally
		}
		conn, err := f.leaderConn()
		if err == nil {
			err = conn.Invoke(forwardedContext(ctx, f.deps.ServerID), method, req, resp)
			if err == nil {
				return resp, nil
			}
			if status.Code(err) != codes.Unavailable {
				return nil, err
			}
		}
		lastErr = err
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, lastErr
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond):
		}
	}
}

var errRunLocally = status.Error(codes.Internal, "run locally")
