package flagenv

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPrecedenceIsFlagThenEnvironmentThenFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.json")
	if err := os.WriteFile(cfg, []byte(`{"data_dir":"/from/file","grpc-addr":"file:1","http_addr":"file:2","ttl":"3s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("T_GRPC_ADDR", "env:1")
	t.Setenv("T_HTTP_ADDR", "env:2")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("config", "", "")
	dataDir := fs.String("data-dir", "default", "")
	grpcAddr := fs.String("grpc-addr", "default", "")
	httpAddr := fs.String("http-addr", "default", "")
	ttl := fs.Duration("ttl", time.Second, "")
	if err := Parse(fs, []string{"--config", cfg, "--http-addr", "flag:2"}, "T", "config"); err != nil {
		t.Fatal(err)
	}
	if *dataDir != "/from/file" || *grpcAddr != "env:1" || *httpAddr != "flag:2" || *ttl != 3*time.Second {
		t.Fatalf("data-dir %q grpc-addr %q http-addr %q ttl %v", *dataDir, *grpcAddr, *httpAddr, *ttl)
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, env, want string
	}{
		{"unknown key", `{"colour":"blue"}`, "", `unknown setting "colour"`},
		{"not JSON", `data_dir: x`, "", "is not a JSON object"},
		{"bad value in file", `{"ttl":"soon"}`, "", `ttl=soon is not a valid --ttl`},
		{"bad value in env", `{}`, "soon", `T_TTL="soon" is not a valid --ttl`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(cfg, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.env != "" {
				t.Setenv("T_TTL", tt.env)
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.String("config", "", "")
			fs.Duration("ttl", time.Second, "")
			err := Parse(fs, []string{"--config", cfg}, "T", "config")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to say %q", err, tt.want)
			}
		})
	}
}
