package api

import (
	"fmt"
	"regexp"
	"strings"

	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/validate"
)

// Limits of a VERIFY restore's checks.
const (
	maxAppChecks         = 10
	maxFilesystems       = 32
	maxAppArgs           = 32
	defaultAppTimeoutSec = 30
	maxAppTimeoutSec     = 600
	maxRegexLen          = 1024
)

var checkName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// normalizeVerify checks a create request's verify options and fills in
// defaults. Only VERIFY restores take them.
func normalizeVerify(mode restorev1.Mode, v *restorev1.VerifyOptions) error {
	if v == nil {
		return nil
	}
	if mode != restorev1.Mode_MODE_VERIFY {
		return validate.Errorf("verify options are only allowed with mode VERIFY")
	}
	if err := checkRegex("verify.serial_marker", v.SerialMarker); err != nil {
		return err
	}
	if len(v.Filesystems) > maxFilesystems {
		return validate.Errorf("verify.filesystems has %d entries; at most %d are allowed", len(v.Filesystems), maxFilesystems)
	}
	for i, fs := range v.Filesystems {
		if err := validate.Required(fmt.Sprintf("verify.filesystems[%d]", i), fs); err != nil {
			return err
		}
	}
	if len(v.AppChecks) > maxAppChecks {
		return validate.Errorf("verify.app_checks has %d checks; at most %d are allowed", len(v.AppChecks), maxAppChecks)
	}
	seen := map[string]bool{}
	for i, c := range v.AppChecks {
		field := fmt.Sprintf("verify.app_checks[%d]", i)
		switch {
		case !checkName.MatchString(c.Name):
			return validate.Errorf("%s.name must be a lowercase DNS label (a-z 0-9 -, at most 40), got %q", field, c.Name)
		case seen[c.Name]:
			return validate.Errorf("%s.name %q is used twice", field, c.Name)
		case !strings.HasPrefix(c.Path, "/") && !windowsAbs(c.Path):
			return validate.Errorf("%s.path must be an absolute path inside the guest, got %q", field, c.Path)
		case len(c.Args) > maxAppArgs:
			return validate.Errorf("%s.args has %d entries; at most %d are allowed", field, len(c.Args), maxAppArgs)
		case c.TimeoutSeconds < 0 || c.TimeoutSeconds > maxAppTimeoutSec:
			return validate.Errorf("%s.timeout_seconds must be between 1 and %d, got %d", field, maxAppTimeoutSec, c.TimeoutSeconds)
		}
		seen[c.Name] = true
		if err := validate.Required(field+".path", c.Path); err != nil {
			return err
		}
		for j, a := range c.Args {
			if len(a) > 4096 {
				return validate.Errorf("%s.args[%d] is longer than 4096 bytes", field, j)
			}
		}
		if err := checkRegex(field+".output_regex", c.OutputRegex); err != nil {
			return err
		}
		if c.TimeoutSeconds == 0 {
			c.TimeoutSeconds = defaultAppTimeoutSec
		}
	}
	return nil
}

func windowsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

func checkRegex(field, re string) error {
	if re == "" {
		return nil
	}
	if len(re) > maxRegexLen {
		return validate.Errorf("%s is %d characters long; at most %d are allowed", field, len(re), maxRegexLen)
	}
	if _, err := regexp.Compile(re); err != nil {
		return validate.Errorf("%s is not a valid regular expression (RE2 syntax): %v", field, err)
	}
	return nil
}
