package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"

	"github.com/restored/restored/internal/mdkeys"
	"google.golang.org/grpc/metadata"
)

// links holds the single-use links of one kind (consoles, downloads) in
// this server's memory, by their token's SHA-256: the token itself is
// never kept, and a link works only on the server that minted it.
type links[G any] struct {
	mu sync.Mutex
	m  map[[32]byte]*link[G]
}

type link[G any] struct {
	grant  G
	expire time.Time
	used   bool
}

func newLinks[G any]() links[G] { return links[G]{m: map[[32]byte]*link[G]{}} }

// mint makes a token for g, valid until expire; expired links are dropped.
func (l *links[G]) mint(g G, expire, now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.m {
		if now.After(v.expire) {
			delete(l.m, k)
		}
	}
	l.m[sha256.Sum256([]byte(tok))] = &link[G]{grant: g, expire: expire}
	return tok, nil
}

// lookup returns a token's grant while it is unused and unexpired; use
// spends it.
func (l *links[G]) lookup(tok string, now time.Time, use bool) (G, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.m[sha256.Sum256([]byte(tok))]
	if k == nil || k.used || now.After(k.expire) {
		var zero G
		return zero, false
	}
	if use {
		k.used = true
	}
	return k.grant, true
}

// linkURL is a link's address on this server as the caller reached it
// (the gateway passes on the Host it was called at; this server's HTTP
// address otherwise).
func (d *Deps) linkURL(ctx context.Context, path string) string {
	host := d.HTTPAddr
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(mdkeys.HTTPHost)) > 0 {
		host = md.Get(mdkeys.HTTPHost)[0]
	}
	return "https://" + host + path
}
