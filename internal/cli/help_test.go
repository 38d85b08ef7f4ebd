package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command says what it does and shows an example in --help.
func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	count := 0
	walk = func(c *cobra.Command) {
		count++
		if strings.TrimSpace(c.Short) == "" {
			t.Errorf("%q has no short description", c.CommandPath())
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no example", c.CommandPath())
		}
		var out bytes.Buffer
		root := NewRoot(&out)
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		root.SetArgs(args)
		root.SetOut(&out)
		if err := root.Execute(); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if !strings.Contains(out.String(), "Examples:") {
			t.Errorf("%v does not print its examples:\n%s", args, out.String())
		}
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	walk(NewRoot(&bytes.Buffer{}))
	if count < 20 {
		t.Fatalf("only %d commands found", count)
	}
}

func TestParseEnumAcceptsEveryForm(t *testing.T) {
	for _, in := range []string{"running", "RUNNING", "RESTORE_STATE_RUNNING", " Running "} {
		s, err := parseState(in)
		if err != nil || s.String() != "RESTORE_STATE_RUNNING" {
			t.Errorf("%q: %v %v", in, s, err)
		}
	}
	if _, err := parseState("dancing"); err == nil || !strings.Contains(err.Error(), "allowed values are pending, scheduled") {
		t.Errorf("dancing: %v", err)
	}
}
