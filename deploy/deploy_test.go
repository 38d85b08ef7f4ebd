// Package deploy holds the systemd units and example settings of a
// deployment (README: "A three-server, two-host deployment") and its
// monitoring (Prometheus alert rules, a Grafana dashboard); its tests prove
// the units start the commands with settings they accept, and that the
// rules and panels ask only for metrics Restored exports.
package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/restored/restored/internal/testcluster"
)

func TestUnitsStartTheCommandsWithSettingsTheyTake(t *testing.T) {
	bins := t.TempDir()
	for _, c := range []struct{ unit, command, config, env, prefix string }{
		{"restored.service", "restored", "restored.json", "restored.env.example", "RESTORED_"},
		{"hypervisor-agent.service", "hypervisor-agent", "hypervisor-agent.json", "hypervisor-agent.env.example", "RESTORED_AGENT_"},
	} {
		t.Run(c.command, func(t *testing.T) {
			unit, err := os.ReadFile(c.unit)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				"ExecStart=/usr/local/bin/" + c.command + " --config /etc/restored/" + c.config + "\n",
				"EnvironmentFile=-/etc/restored/" + strings.TrimSuffix(c.env, ".example") + "\n",
				"[Install]\nWantedBy=multi-user.target\n",
			} {
				if !strings.Contains(string(unit), want) {
					t.Fatalf("%s does not say %q", c.unit, want)
				}
			}
			bin, err := testcluster.BuildCommand("..", bins, c.command)
			if err != nil {
				t.Fatal(err)
			}
			// Every key of the example settings is a flag (an unknown key
			// fails the parse that --version follows).
			if out, err := exec.Command(bin, "--config", c.config, "--version").CombinedOutput(); err != nil {
				t.Fatalf("%s --config %s: %v\n%s", c.command, c.config, err, out)
			}
			bad := filepath.Join(t.TempDir(), "bad.json")
			_ = os.WriteFile(bad, []byte(`{"no-such-setting": 1}`), 0o600)
			if out, err := exec.Command(bin, "--config", bad, "--version").CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown setting") {
				t.Fatalf("an unknown setting was not refused: %v %s", err, out)
			}
			// Every variable of the example environment file names a flag.
			help, _ := exec.Command(bin, "--help").CombinedOutput()
			f, err := os.Open(c.env)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				name, _, _ := strings.Cut(line, "=")
				if !strings.HasPrefix(name, c.prefix) {
					t.Fatalf("%s: %s does not start with %s", c.env, name, c.prefix)
				}
				flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, c.prefix), "_", "-"))
				if !strings.Contains(string(help), "  -"+flag+" ") && !strings.Contains(string(help), "  -"+flag+"\n") {
					t.Fatalf("%s: %s is no flag of %s (--%s)", c.env, name, c.command, flag)
				}
			}
		})
	}
}
