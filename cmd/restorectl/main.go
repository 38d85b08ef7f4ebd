// Command restorectl is the operator CLI of Restored, a thin client of the
// public gRPC API. Run "restorectl --help" for the commands.
package main

import (
	"os"

	"github.com/restored/restored/internal/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
