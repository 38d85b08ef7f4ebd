package api

import (
	"context"
	"errors"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/hypervisor"
	"github.com/restored/restored/internal/lifecycle"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ConsoleTTL is how long a console URL can be opened.
const ConsoleTTL = 60 * time.Second

// ConsoleGrant is what a console token opens.
type ConsoleGrant struct {
	RestoreID, Tenant, HostID string
	Expire                    time.Time
}

// Consoles holds console tokens: single use, 60 seconds. The URL points at
// the server that minted it.
type Consoles struct{ links links[ConsoleGrant] }

// NewConsoles returns an empty token store.
func NewConsoles() *Consoles { return &Consoles{links: newLinks[ConsoleGrant]()} }

// ErrConsoleToken is a console token that is unknown, used or expired.
var ErrConsoleToken = errors.New("this console link was already used or has expired; ask for a new one")

func (c *Consoles) mint(g ConsoleGrant, now time.Time) (string, error) {
	return c.links.mint(g, g.Expire, now)
}

func (c *Consoles) lookup(tok string, now time.Time, use bool) (ConsoleGrant, error) {
	g, ok := c.links.lookup(tok, now, use)
	if !ok {
		return ConsoleGrant{}, ErrConsoleToken
	}
	return g, nil
}

// Peek checks a token without using it (the page that will connect).
func (c *Consoles) Peek(tok string) (ConsoleGrant, error) { return c.lookup(tok, time.Now(), false) }

// Use spends a token (the console connection itself).
func (c *Consoles) Use(tok string) (ConsoleGrant, error) { return c.lookup(tok, time.Now(), true) }

// CreateConsole implements the RPC.
func (s *RestoreService) CreateConsole(ctx context.Context, req *restorev1.CreateConsoleRequest) (*restorev1.CreateConsoleResponse, error) {
	x, err := visibleRestore(s.Store.Read(nil), principal(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	if !lifecycle.HasVM(x.Mode) {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is an %s restore: it has no VM and so no console", x.Id, lifecycle.ModeName(x.Mode))
	}
	if !lifecycle.HasScreen(x.State) {
		return nil, status.Errorf(codes.FailedPrecondition, "restore %s is %s: only a BOOTING or RUNNING restore has a console", x.Id, x.State)
	}
	if err := needs(s.Store.Read(nil), x.HostId, hypervisor.Console, "serve a console"); err != nil {
		return nil, err
	}
	now := s.Now()
	expire := now.Add(ConsoleTTL)
	tok, err := s.Consoles.mint(ConsoleGrant{RestoreID: x.Id, Tenant: x.Tenant, HostID: x.HostId, Expire: expire}, now)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "console token: %v", err)
	}
	s.Log.Info("console link made", "restore", x.Id, "expires", expire.Format(time.RFC3339)) // never the token
	return &restorev1.CreateConsoleResponse{Url: s.linkURL(ctx, "/console/"+tok), ExpireTime: timestamppb.New(expire)}, nil
}
