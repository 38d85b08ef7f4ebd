// Package mdkeys owns the gRPC metadata keys that the REST gateway, the API
// and the servers' forwarding share: one place for each wire name.
package mdkeys

const (
	// Consistency asks for a linearizable read ("linearizable"); HTTP
	// clients send the X-Restored-Consistency header.
	Consistency = "x-restored-consistency"
	// Forwarded marks a call one server forwarded to another.
	Forwarded = "x-restored-forwarded"
	// HTTPHost carries the HTTP Host a REST call came to (console URLs
	// point back at it).
	HTTPHost = "x-restored-http-host"
	// AgentHost carries, on a call one server forwards to another, the
	// host of the agent whose certificate the first server checked.
	AgentHost = "x-restored-agent-host"
	// StreamOpen is the header a server stream sends once it is authorised
	// and open: the gateway answers 200 only then.
	StreamOpen = "x-restored-stream-open"
	// Source carries, on a forwarded call, the address of the caller the
	// first server served (believed only from a server's certificate).
	Source = "x-restored-source"
	// ForwardedFor is the HTTP client's address the gateway passes on
	// (grpc-gateway's own key).
	ForwardedFor = "x-forwarded-for"
	// AuditLocal asks a server for the refusals it recorded itself only
	// (servers ask each other when listing audit events).
	AuditLocal = "x-restored-audit-local"
)
