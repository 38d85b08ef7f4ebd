package kinds

import "regexp"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// IsDNSLabel says whether s is a lowercase DNS label (1-63 characters a-z,
// 0-9 and '-', not starting or ending with '-'): what tenant and host ids
// are. The API's validation, manifests, the agent's flags and the domain
// builder all ask here.
func IsDNSLabel(s string) bool { return dnsLabel.MatchString(s) }
