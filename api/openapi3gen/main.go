// Command openapi3gen writes the OpenAPI 3 document of the REST API from the
// OpenAPI 2 document protoc-gen-openapiv2 generates, adding what OpenAPI 2
// cannot say or the generator does not know: the bearer scheme as an HTTP
// bearer (the client sends the bare secret), the PNG screenshot routes, and
// the error body of a stream refused before it opened. `make generate` runs
// it; restored serves the result at GET /openapi3.json.
//
//	go run ./api/openapi3gen api/openapi/restore.swagger.json api/openapi/restore.openapi3.json
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: openapi3gen IN.swagger.json OUT.openapi3.json")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "openapi3gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var v2 openapi2.T
	if err := json.Unmarshal(raw, &v2); err != nil {
		return fmt.Errorf("%s is not OpenAPI 2: %w", in, err)
	}
	doc, err := openapi2conv.ToV3(&v2)
	if err != nil {
		return fmt.Errorf("convert to OpenAPI 3: %w", err)
	}
	bearer(doc)
	screenshots(doc)
	streamErrors(doc)
	if err := doc.Validate(context.Background()); err != nil {
		return fmt.Errorf("the OpenAPI 3 document is not valid: %w", err)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

// bearer replaces the OpenAPI 2 apiKey (whose value had to carry "Bearer ")
// with an HTTP bearer scheme: clients send the token's secret.
func bearer(doc *openapi3.T) {
	doc.Components.SecuritySchemes = openapi3.SecuritySchemes{
		"bearer": &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("http").WithScheme("bearer").
			WithDescription("A token's secret (restorectl token create), sent as Authorization: Bearer <secret>.")},
	}
	doc.Security = openapi3.SecurityRequirements{{"bearer": []string{}}}
}

// errorResponse is the error body every call answers with: google.rpc.Status.
func errorResponse(doc *openapi3.T, desc string) *openapi3.Response {
	return openapi3.NewResponse().WithDescription(desc).
		WithJSONSchemaRef(openapi3.NewSchemaRef("#/components/schemas/rpcStatus", doc.Components.Schemas["rpcStatus"].Value))
}

// screenshots adds the routes that answer a PNG (served beside the gateway,
// through the same gRPC methods and tenancy).
func screenshots(doc *openapi3.T) {
	png := func(id, summary string, params ...*openapi3.ParameterRef) *openapi3.PathItem {
		op := openapi3.NewOperation()
		op.OperationID, op.Summary, op.Parameters = id, summary, params
		op.Tags = []string{strings.SplitN(id, "_", 2)[0]}
		op.Responses = openapi3.NewResponses(
			openapi3.WithStatus(200, &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("the screenshot").
				WithContent(openapi3.Content{"image/png": &openapi3.MediaType{Schema: openapi3.NewStringSchema().WithFormat("binary").NewRef()}})}),
			openapi3.WithName("default", errorResponse(doc, "An unexpected error response.")),
		)
		return &openapi3.PathItem{Get: op}
	}
	path := func(name, desc string, schema *openapi3.Schema) *openapi3.ParameterRef {
		return &openapi3.ParameterRef{Value: openapi3.NewPathParameter(name).WithDescription(desc).WithSchema(schema)}
	}
	doc.Paths.Set("/v1/restores/{id}/screenshot", png("RestoreService_GetRestoreScreenshotPNG",
		"The restore's screen now, as a PNG (a BOOTING or RUNNING restore).", path("id", "The restore's id.", openapi3.NewStringSchema())))
	doc.Paths.Set("/v1/verifications/{id}/screenshots/{n}", png("VerificationService_GetVerificationScreenshotPNG",
		"Screenshot n (1, 2, …) a verification kept, as a PNG.",
		path("id", "The verification's id.", openapi3.NewStringSchema()), path("n", "The screenshot's number.", openapi3.NewInt32Schema())))
}

// streamErrors documents what a stream refused before it opened answers:
// the error's HTTP status with the stream's error chunk, {"error": Status}.
func streamErrors(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			ok := op.Responses.Status(200)
			if ok == nil || ok.Value == nil || ok.Value.Description == nil || !strings.HasPrefix(*ok.Value.Description, "A successful response.(streaming responses)") {
				continue
			}
			var schema *openapi3.SchemaRef
			for _, mt := range ok.Value.Content {
				schema = mt.Schema
			}
			op.Responses.Set("default", &openapi3.ResponseRef{Value: openapi3.NewResponse().
				WithDescription("The stream was refused before it opened (a bad token: 401): one chunk carrying the error.").
				WithJSONSchemaRef(schema)})
		}
	}
}
