package testvcsim

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Query is a QueryChangedDiskAreas call as the proxy saw it.
type Query struct {
	VM, Snapshot string
	DeviceKey    int32
	StartOffset  int64
	ChangeID     string
}

// Area is a changed area.
type Area struct{ Start, Length int64 }

// Answer is what vSphere would answer a query: the areas changed in
// StartOffset..StartOffset+Length, or a fault.
type Answer struct {
	StartOffset, Length int64
	Areas               []Area
	// Fault, when set, is the vim25 fault type answered instead
	// (InvalidArgument for a change id vSphere no longer accepts), with
	// FaultString its message.
	Fault, FaultString string
}

// Proxy is vcsim behind a TLS proxy that answers QueryChangedDiskAreas
// (which vcsim does not implement) with responses in vSphere's SOAP wire
// format, written from the vSphere Web Services API reference (DiskChangeInfo,
// and the InvalidArgument fault of a change id that is no longer valid). A
// query for "*" (every allocated area) is passed to vcsim, which refuses
// it, as some datastores do. Everything else goes to vcsim unchanged.
type Proxy struct {
	// URL is the proxy's SDK URL (with the simulator's user and password).
	URL *url.URL

	mu      sync.Mutex
	answer  func(Query) Answer
	queries []Query
}

// SetAnswer sets how queries are answered (nil: passed to vcsim).
func (p *Proxy) SetAnswer(f func(Query) Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = f
}

// Queries returns the queries answered so far, and forgets them.
func (p *Proxy) Queries() []Query {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queries
	p.queries = nil
	return q
}

var (
	reDevice   = regexp.MustCompile(`<deviceKey>(-?\d+)</deviceKey>`)
	reOffset   = regexp.MustCompile(`<startOffset>(\d+)</startOffset>`)
	reChangeID = regexp.MustCompile(`<changeId>([^<]*)</changeId>`)
	reThis     = regexp.MustCompile(`<_this[^>]*>([^<]*)</_this>`)
	reSnapshot = regexp.MustCompile(`<snapshot[^>]*>([^<]*)</snapshot>`)
)

// StartProxy runs the proxy in front of s until the test ends.
func StartProxy(t testing.TB, s *Sim) *Proxy {
	t.Helper()
	caPEM, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	target := &url.URL{Scheme: "https", Host: s.URL.Host}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	p := &Proxy{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/sdk" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			if bytes.Contains(body, []byte("<QueryChangedDiskAreas")) && p.serve(w, body) {
				return
			}
		}
		rp.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	u := *s.URL
	u.Host = l.Addr().String()
	p.URL = &u
	return p
}

func first(re *regexp.Regexp, b []byte) string {
	if m := re.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// serve answers one query, unless it is for "*" or no answer is set.
func (p *Proxy) serve(w http.ResponseWriter, body []byte) bool {
	q := Query{VM: first(reThis, body), Snapshot: first(reSnapshot, body), ChangeID: first(reChangeID, body)}
	key, _ := strconv.ParseInt(first(reDevice, body), 10, 32)
	q.DeviceKey = int32(key)
	q.StartOffset, _ = strconv.ParseInt(first(reOffset, body), 10, 64)
	p.mu.Lock()
	answer := p.answer
	if answer != nil && q.ChangeID != "*" {
		p.queries = append(p.queries, q)
	}
	p.mu.Unlock()
	if answer == nil || q.ChangeID == "*" {
		return false
	}
	a := answer(q)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if a.Fault != "" {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail><%sFault xmlns="urn:vim25" xsi:type="%s"><invalidProperty>changeId</invalidProperty></%sFault></detail></soapenv:Fault>
</soapenv:Body>
</soapenv:Envelope>`, xmlEscape(a.FaultString), a.Fault, a.Fault, a.Fault)
		return true
	}
	var areas strings.Builder
	for _, ar := range a.Areas {
		fmt.Fprintf(&areas, "<changedArea><start>%d</start><length>%d</length></changedArea>", ar.Start, ar.Length)
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
<QueryChangedDiskAreasResponse xmlns="urn:vim25"><returnval><startOffset>%d</startOffset><length>%d</length>%s</returnval></QueryChangedDiskAreasResponse>
</soapenv:Body>
</soapenv:Envelope>`, a.StartOffset, a.Length, areas.String())
	return true
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
