// Package gateway serves the HTTP side of restored: the REST API (grpc-gateway
// in front of the local gRPC server), /healthz, /readyz, /metrics,
// /openapi.json (v2) and /openapi3.json (v3). Responses name fields as the
// documents do (proto names) and leave unset messages out (never null). It caps request bodies at 1 MiB and accepts enum values with
// or without their buf prefix ("VIRTUALIZE" or "MODE_VIRTUALIZE") in JSON
// bodies and query strings.
package gateway
