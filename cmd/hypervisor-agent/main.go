// Command hypervisor-agent is the per-host agent of Restored. It is not
// implemented yet (the KVM agent is the next piece of work); this binary
// says so plainly instead of pretending to run.
package main

import (
	"fmt"
	"os"

	"github.com/restored/restored/internal/version"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println(version.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "hypervisor-agent: not implemented yet in this build: the KVM agent (libvirt restores) is the next piece of work; "+
		"the control plane (restored, restorectl) is ready for it to register")
	os.Exit(2)
}
