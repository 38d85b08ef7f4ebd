package e2e

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restored/restored/internal/server"
	"github.com/restored/restored/internal/testcluster"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// On first start a lone server writes an admin token to
// <data-dir>/bootstrap-token with mode 0600 and logs only the path; a
// restart does not mint another.
func TestBootstrapTokenIsWrittenPrivatelyAndNeverLogged(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	// Fixed addresses, so the restarted server has nothing new to write.
	addrs := make([]string, 3)
	for i := range addrs {
		var err error
		if addrs[i], err = testcluster.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	start := func() *server.Server {
		s, err := server.Start(server.Config{DataDir: dir, GRPCAddr: addrs[0], HTTPAddr: addrs[1], RaftAddr: addrs[2],
			NodeID: "s1", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	path := filepath.Join(dir, "bootstrap-token")
	eventually(t, 10*time.Second, "bootstrap token", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	info, _ := os.Stat(path)
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Fatalf("bootstrap-token mode %o, want 600", mode)
	}
	raw, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(raw))
	if !strings.Contains(logs.String(), path) {
		t.Fatalf("the log does not name the token file:\n%s", logs.String())
	}
	_, secret, _ := strings.Cut(strings.TrimPrefix(token, "rst."), ".")
	if secret == "" || strings.Contains(logs.String(), secret) {
		t.Fatal("the log contains the token's secret")
	}
	s.Stop()

	s = start()
	defer s.Stop()
	eventually(t, 10*time.Second, "leadership after restart", func() bool { return s.Node().IsLeader() })
	// An idle restarted server becomes ready even though the newest entries
	// are raft's own (no-op, configuration), not commands.
	eventually(t, 10*time.Second, "readiness after restart", func() bool {
		resp, err := httpsClient(t, s.CACert()).Get("https://" + s.HTTPAddr() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	time.Sleep(300 * time.Millisecond)
	again, _ := os.ReadFile(path)
	if strings.TrimSpace(string(again)) != token {
		t.Fatal("a restart minted a new bootstrap token")
	}
	n := 0
	for _, tok := range s.Store().Read(nil).Tokens() {
		if tok.Bootstrap {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d bootstrap tokens in the state, want 1", n)
	}
}
