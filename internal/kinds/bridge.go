package kinds

import "regexp"

var bridgeName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// ValidBridgeName says whether s can name a host bridge: a Linux interface
// name (at most 15 characters, IFNAMSIZ) of letters, digits, '_', '.' and
// '-', exactly as the domain XML carries it. The API, the agent and the
// domain builder all ask here.
func ValidBridgeName(s string) bool { return bridgeName.MatchString(s) }
