// Package flagenv fills a flag.FlagSet from, in order of precedence, the
// command line, environment variables (PREFIX_FLAG_NAME) and an optional
// JSON config file whose keys are the flag names.
package flagenv

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the environment variable for a flag: prefix + upper snake name.
func EnvName(prefix, flagName string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args, then fills every flag not given on the command line
// from the environment, then from the config file named by the flag
// configFlag (if any).
func Parse(fs *flag.FlagSet, args []string, prefix, configFlag string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || firstErr != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(prefix, f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				firstErr = fmt.Errorf("environment %s=%q is not a valid --%s: %w", EnvName(prefix, f.Name), v, f.Name, err)
			}
			set[f.Name] = true
		}
	})
	if firstErr != nil || configFlag == "" {
		return firstErr
	}
	path := fs.Lookup(configFlag).Value.String()
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("config file %s is not a JSON object: %w", path, err)
	}
	for key, v := range values {
		name := strings.ReplaceAll(key, "_", "-")
		if fs.Lookup(name) == nil {
			return fmt.Errorf("config file %s: unknown setting %q", path, key)
		}
		if set[name] {
			continue
		}
		if err := fs.Set(name, fmt.Sprint(v)); err != nil {
			return fmt.Errorf("config file %s: %s=%v is not a valid --%s: %w", path, key, v, name, err)
		}
	}
	return nil
}
