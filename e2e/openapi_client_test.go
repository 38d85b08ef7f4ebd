package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// validator checks requests and response bodies against the OpenAPI 3
// document as a proxy between a client and the server.
type validator struct {
	t      *testing.T
	router routers.Router
	mu     sync.Mutex
	seen   map[string]int // "GET /v1/restores/{id} 200" → count
	bad    []string
}

func (v *validator) fail(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.bad = append(v.bad, fmt.Sprintf(format, args...))
}

func (v *validator) input(req *http.Request) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return nil, err
	}
	return &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}, nil
}

// response validates one response body (or one chunk of a stream).
func (v *validator) response(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) {
	key := fmt.Sprintf("%s %s %d", in.Request.Method, in.Route.Path, status)
	v.mu.Lock()
	v.seen[key]++
	v.mu.Unlock()
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: in.Options,
	})
	if err != nil {
		v.fail("%s: the body does not match the document: %v\nbody: %.400s", key, err, body)
	}
}

// proxy serves a validating reverse proxy to target (over HTTPS, trusting
// the cluster CA through transport) and returns its URL: plain HTTP on
// loopback, a test's instrument between the client and the server.
func (v *validator) proxy(t *testing.T, target string, transport http.RoundTripper) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = transport
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		in, err := v.input(resp.Request)
		if err != nil {
			v.fail("%s %s: not in the document: %v", resp.Request.Method, resp.Request.URL.Path, err)
			return nil
		}
		if strings.HasSuffix(in.Route.Path, ":watch") && resp.StatusCode == http.StatusOK {
			// A stream: validate each newline-delimited chunk as it passes.
			pr, pw := io.Pipe()
			body := resp.Body
			go func() {
				defer body.Close()
				sc := bufio.NewScanner(io.TeeReader(body, pw))
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					v.response(in, resp.StatusCode, resp.Header, append([]byte(nil), sc.Bytes()...))
				}
				_ = pw.CloseWithError(io.EOF)
			}()
			resp.Body = pr
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		v.response(in, resp.StatusCode, resp.Header, b)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return nil
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := v.input(r)
		if err == nil {
			// The request as the generated client sent it (the body is read
			// and put back).
			var body []byte
			if r.Body != nil {
				body, _ = io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			check := r.Clone(context.Background())
			check.Body = io.NopCloser(bytes.NewReader(body))
			in.Request = check
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				v.fail("%s %s: the request does not match the document: %v", r.Method, r.URL.Path, err)
			}
		}
		rp.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// A partner-portal developer's client: TypeScript types generated from the
// served OpenAPI 3 document with openapi-typescript, an openapi-fetch client
// type-checked with tsc --strict, a partner's story run through it against
// a real server, and every request and response validated against the
// document by a proxy in between.
func TestAClientGeneratedFromTheServedDocumentWorks(t *testing.T) {
	pkg, err := filepath.Abs("openapi-client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pkg, "node_modules", ".bin", "openapi-typescript")); err != nil {
		t.Fatalf("the client's tools are not installed: run `make openapi-client` (make test does): %v", err)
	}
	e := startServer(t)
	partner := e.partner("acme")
	other := e.partner("globex")
	e.agent("kvm-01", rp("rp-portal", "acme", "web-01"), rp("rp-globex", "globex", "db-01"))
	foreign := e.createRestore(other, "rp-globex", "globex-1")

	resp, err := e.http.Get(e.base + "/openapi3.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the served OpenAPI 3 document is invalid: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	v := &validator{t: t, router: router, seen: map[string]int{}}
	base := v.proxy(t, e.base, e.http.Transport)

	work, err := os.MkdirTemp(pkg, "run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(work) })
	if err := os.WriteFile(filepath.Join(work, "openapi3.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"story.ts", "tsconfig.json"} {
		b, err := os.ReadFile(filepath.Join(pkg, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(pkg, "node_modules", ".bin")
	run(t, work, nil, filepath.Join(bin, "openapi-typescript"), "openapi3.json", "-o", "schema.d.ts")
	run(t, work, nil, filepath.Join(bin, "tsc"), "-p", "tsconfig.json")
	out := run(t, work, []string{"RESTORED_URL=" + base, "RESTORED_TOKEN=" + partner, "RESTORED_RECOVERY_POINT=rp-portal",
		"RESTORED_OTHER_RESTORE=" + foreign}, "node", filepath.Join("out", "story.js"))
	t.Logf("the story:\n%s", out)

	v.mu.Lock()
	defer v.mu.Unlock()
	for _, b := range v.bad {
		t.Error(b)
	}
	total := 0
	for k, n := range v.seen {
		total += n
		t.Logf("validated %2d × %s", n, k)
	}
	for _, want := range []string{"GET /v1/restores/{id} 404", "POST /v1/restores 400", "GET /v1/restores:watch 401", "GET /v1/restores:watch 200"} {
		if v.seen[want] == 0 {
			t.Errorf("no %s went through the proxy", want)
		}
	}
	if total < 15 {
		t.Fatalf("only %d responses validated", total)
	}
}
