package hypervisor

import (
	"fmt"
	"strings"
)

// RestoreNote is the note a driver writes on a restore VM it makes on a
// hypervisor it shares with others (VMware's annotation, Hyper-V's
// notes), so that it knows its own again after a restart: the restore
// and the Restored host.
func RestoreNote(id, hostID string) string {
	return fmt.Sprintf("Restored restore %s of host %s", id, hostID)
}

// ParseRestoreNote reads a note back: the restore id, when the note is one
// of hostID's restores.
func ParseRestoreNote(note, hostID string) (string, bool) {
	rest, ok := strings.CutPrefix(note, "Restored restore ")
	if !ok {
		return "", false
	}
	id, host, ok := strings.Cut(rest, " of host ")
	return id, ok && host == hostID && id != ""
}
