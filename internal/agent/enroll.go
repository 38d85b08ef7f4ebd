package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/agentid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TLSDir is where an agent keeps its certificate, below its work dir.
func TLSDir(workDir string) string { return filepath.Join(workDir, "tls") }

// identity loads the agent's kept certificate or, the first time, enrolls
// with the join token; the certificate must name the agent's host.
func (a *Agent) identity(ctx context.Context) (*agentid.Identity, error) {
	dir := TLSDir(a.cfg.WorkDir)
	id, err := agentid.LoadIdentity(dir)
	switch {
	case err == nil:
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	case a.cfg.JoinToken == "":
		return nil, fmt.Errorf("this agent has no certificate in %s: start it once with --join-token (restorectl host join-token %s) and --ca-fingerprint", dir, a.cfg.HostID)
	default:
		for i := 0; ; i++ {
			server := a.cfg.Servers[i%len(a.cfg.Servers)]
			id, err = agentid.Enroll(ctx, agentid.EnrollOptions{Server: server, JoinToken: a.cfg.JoinToken, CAFingerprint: a.cfg.CAFingerprint,
				CACert: a.cfg.CACert, Dir: dir, Log: a.log})
			if err == nil || status.Code(errors.Unwrap(err)) != codes.Unavailable || i+1 >= len(a.cfg.Servers) || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		a.log.Info("enrolled: the agent's certificate is kept", "host", id.Host, "dir", dir, "expires", id.Keeper.Leaf().NotAfter.UTC().Format(time.RFC3339))
	}
	if id.Host != a.cfg.HostID {
		return nil, fmt.Errorf("the agent's certificate (in %s) is for host %q, not --host-id %q", dir, id.Host, a.cfg.HostID)
	}
	return id, nil
}

// renewals renews the agent's certificate when it has used two thirds of
// its lifetime.
func (a *Agent) renewals(ctx context.Context, client restorev1.AgentServiceClient) {
	leaf := a.id.Keeper.Leaf()
	every := min(time.Hour, max(leaf.NotAfter.Sub(leaf.NotBefore)/20, time.Second))
	for {
		if a.id.Keeper.Due(time.Now()) {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := a.id.Renew(rctx, client)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("renewing the agent's certificate failed; retrying", "err", err)
				}
			} else {
				a.log.Info("renewed the agent's certificate", "expires", a.id.Keeper.Leaf().NotAfter.UTC().Format(time.RFC3339))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
