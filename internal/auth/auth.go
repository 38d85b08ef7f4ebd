// Package auth owns bearer tokens and the caller's identity: minting token
// secrets, hashing them for storage (only SHA-256 digests are stored),
// checking a presented secret against the state store, and carrying the
// resulting Principal in a context.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Role is what a token may do.
type Role string

// Roles.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RolePartner  Role = "partner"
	RoleBackup   Role = "backup"
	RoleAgent    Role = "agent"
	// RoleServer is another server of the cluster, by its certificate; no
	// token has it (ParseRole refuses it).
	RoleServer Role = "server"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, bool) {
	switch r := Role(s); r {
	case RoleAdmin, RoleOperator, RolePartner, RoleBackup, RoleAgent:
		return r, true
	}
	return "", false
}

// TenantScoped reports whether tokens of this role belong to one tenant.
func (r Role) TenantScoped() bool { return r == RolePartner || r == RoleBackup }

// Principal is an authenticated caller.
type Principal struct {
	TokenID string
	Tenant  string // empty: every tenant
	Role    Role
	// Host is the host an agent acts for (from its certificate).
	Host string
	// CertIssued is when the agent's certificate was issued (its
	// NotBefore), to refuse it once its host is revoked.
	CertIssued time.Time
}

// Sees reports whether the caller may see objects of tenant t.
func (p *Principal) Sees(t string) bool { return p.Tenant == "" || p.Tenant == t }

// Scope is the tenant filter for lists: empty means every tenant.
func (p *Principal) Scope() string { return p.Tenant }

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the caller, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

const secretPrefix = "rst."

// NewTokenID returns a fresh token id.
func NewTokenID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "tok-" + hex.EncodeToString(b)
}

// NewSecret returns a fresh secret for token id: "rst.<id>.<random>".
func NewSecret(id string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return secretPrefix + id + "." + base64.RawURLEncoding.EncodeToString(b)
}

// Hash is what the store keeps of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func tokenIDOf(secret string) (string, bool) {
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ".")
	return id, ok && id != ""
}

// ErrUnauthenticated is returned for a missing, malformed, unknown or revoked token.
var ErrUnauthenticated = status.Error(codes.Unauthenticated,
	"missing or invalid bearer token: send \"Authorization: Bearer <token secret>\" with a token that has not been revoked")

// Authenticate checks a presented secret against the current state at now:
// the token must exist, match, and be neither revoked nor expired
// (store.TokenEnd).
func Authenticate(r *store.Reader, secret string, now time.Time) (*Principal, error) {
	id, ok := tokenIDOf(secret)
	if !ok {
		return nil, ErrUnauthenticated
	}
	t := r.Token(id)
	if t == nil || subtle.ConstantTimeCompare(t.SecretSha256, Hash(secret)) != 1 {
		return nil, ErrUnauthenticated
	}
	if !store.TokenUsable(t, now) {
		if t.Token.RevokeTime == nil {
			// Only the holder of the secret learns this.
			return nil, status.Errorf(codes.Unauthenticated, "token %s expired at %s: ask an admin for a new one (rotate tokens before they expire: POST /v1/tokens/self:rotate)",
				id, t.Token.ExpireTime.AsTime().UTC().Format(time.RFC3339))
		}
		return nil, ErrUnauthenticated
	}
	return &Principal{TokenID: id, Tenant: t.Token.Tenant, Role: Role(t.Token.Role)}, nil
}

// BearerFrom extracts the secret from an Authorization header value.
func BearerFrom(header string) string {
	if len(header) > 7 && strings.EqualFold(header[:7], "bearer ") {
		return strings.TrimSpace(header[7:])
	}
	return ""
}
