// Package api holds Restored's public API: the protobuf sources
// (api/proto/restore/v1), the REST mapping (restore_v1_http.yaml), the
// generated Go code (api/gen) and the OpenAPI documents that restored
// serves: v2 at GET /openapi.json, v3 at GET /openapi3.json.
package api

import _ "embed"

// OpenAPI is the generated OpenAPI v2 document of the REST API.
//
//go:embed openapi/restore.swagger.json
var OpenAPI []byte

// OpenAPI3 is the OpenAPI 3 document, made from OpenAPI by api/openapi3gen.
//
//go:embed openapi/restore.openapi3.json
var OpenAPI3 []byte
