// Package api holds Restored's public API: the protobuf sources
// (api/proto/restore/v1), the REST mapping (restore_v1_http.yaml), the
// generated Go code (api/gen) and the OpenAPI v2 document that restored
// serves at GET /openapi.json.
package api

import _ "embed"

// OpenAPI is the generated OpenAPI v2 document of the REST API.
//
//go:embed openapi/restore.swagger.json
var OpenAPI []byte
