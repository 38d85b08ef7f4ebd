// Package cli implements restorectl, the operator CLI: a thin gRPC client of
// the public API. Each resource has its own file of cobra commands; output
// is a table (default) or JSON (--output json, proto field names).
package cli
