// Package gateway serves the HTTP side of restored: the REST API (grpc-gateway
// in front of the local gRPC server), /healthz, /readyz, /metrics and
// /openapi.json. It caps request bodies at 1 MiB and accepts enum values with
// or without their buf prefix ("VIRTUALIZE" or "MODE_VIRTUALIZE") in JSON
// bodies and query strings.
package gateway
