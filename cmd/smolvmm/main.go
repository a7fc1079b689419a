// Command smolvmm runs NetBSD microVMs on KVM and builds what they boot.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func commands() []*cli.Command {
	return []*cli.Command{
		// Each subcommand lives in its own file; add yours here.
		fetchCommand(),
		runCommand(),
		demoCommand(),
	}
}

func main() {
	app := &cli.App{
		Name:     "smolvmm",
		Usage:    "a Go microVM monitor for NetBSD",
		Commands: commands(),
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "smolvmm:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode maps an error to the process exit status: a guest's own exit
// status when the error carries one, 1 otherwise.
func exitCode(err error) int {
	if ec, ok := err.(cli.ExitCoder); ok {
		return ec.ExitCode()
	}
	return 1
}
