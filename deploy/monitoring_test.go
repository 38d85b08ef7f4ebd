package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"go.yaml.in/yaml/v4"
)

// exported are the metric names restored and the agent define: every
// "restored_…" name in their metrics packages' sources.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	lit := regexp.MustCompile(`"(restored_[a-z0-9_]+)"`)
	for _, dir := range []string{"../internal/metrics", "../internal/agentmetrics"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
				names[m[1]] = true
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the metrics packages: %v", len(names), names)
	}
	return names
}

var (
	metricRef = regexp.MustCompile(`\brestored_[a-z0-9_]+`)
	stateSel  = regexp.MustCompile(`state="([A-Z_]+)"`)
)

// checkExpr fails when an expression names a metric Restored does not
// export, a state that does not exist, or is unbalanced.
func checkExpr(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	refs := metricRef.FindAllString(expr, -1)
	if len(refs) == 0 {
		t.Errorf("%s: %q names no Restored metric", where, expr)
	}
	for _, r := range refs {
		base := r
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(r, suf); ok && names[b] {
				base = b
			}
		}
		if !names[base] {
			t.Errorf("%s: %s is not a metric Restored exports", where, r)
		}
	}
	for _, m := range stateSel.FindAllStringSubmatch(expr, -1) {
		_, restore := restorev1.RestoreState_value[m[1]]
		_, host := restorev1.HostState_value[m[1]]
		if !restore && !host {
			t.Errorf("%s: state %q is no restore or host state", where, m[1])
		}
	}
	depth := 0
	for _, c := range expr {
		switch c {
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		}
		if depth < 0 {
			break
		}
	}
	if depth != 0 {
		t.Errorf("%s: %q has unbalanced brackets", where, expr)
	}
}

func TestAlertRulesNameOnlyMetricsRestoredExports(t *testing.T) {
	names := exported(t)
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	seen := map[string]bool{}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("group %s: an alert without a name, or twice: %q", g.Name, r.Alert)
			}
			seen[r.Alert] = true
			checkExpr(t, r.Alert, r.Expr, names)
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: a summary and a description are what the person paged reads", r.Alert)
			}
		}
	}
	for _, want := range []string{"RestoredLeaderless", "RestoredHostDown", "RestoredVerificationFailureRate", "RestoredAgentDiskAlmostFull"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

func TestDashboardPanelsQueryOnlyMetricsRestoredExports(t *testing.T) {
	names := exported(t)
	b, err := os.ReadFile("grafana/restored-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("the dashboard has no title, uid or panels")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: a repeated id, no title or no query", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, q := range p.Targets {
			checkExpr(t, p.Title, q.Expr, names)
		}
	}
}
