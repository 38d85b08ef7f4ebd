package flagenv

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
)

// LogFlags adds --log-level and --log-json to fs; the returned function,
// called after parsing, makes the logger they describe (on stderr).
func LogFlags(fs *flag.FlagSet) func() (*slog.Logger, error) {
	level := fs.String("log-level", "info", "debug, info, warn or error")
	asJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	return func() (*slog.Logger, error) {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*level)); err != nil {
			return nil, fmt.Errorf("--log-level %q: %w", *level, err)
		}
		opts := &slog.HandlerOptions{Level: l}
		if *asJSON {
			return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
		}
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
}
