//go:build !linux

package confine

import (
	"fmt"
	"runtime"
)

// POSIX ACLs are Linux's: an agent built for another system (a Hyper-V
// agent for Windows) confines no QEMU and never calls these.

func editACL(path string, _ uint16, _ uint32, _ uint16) error {
	return fmt.Errorf("%s: POSIX ACLs are not available on %s", path, runtime.GOOS)
}

func aclAllows(path string, _ uint16, _ uint32, _ uint16) (bool, error) {
	return false, fmt.Errorf("%s: POSIX ACLs are not available on %s", path, runtime.GOOS)
}
