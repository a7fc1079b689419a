package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// versionCommand prints what versionLine says; smolvmm --version does too
// (appAction). up rebuilds a built-in service's image after an upgrade of
// smolvmm: this says which smolvmm a user has.
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print smolvmm's version, the commit it was built from and the Go version (as --version)",
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, 0, ""); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, versionLine())
			return nil
		},
	}
}

// versionLine is this binary's versionText.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		// A binary built without module support records nothing.
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	return versionText(bi)
}

// versionText is "smolvmm VERSION (revision REV[, modified]) built with
// GOVERSION" from a binary's build information: the main module's version
// (go install's; from Go 1.24 on, go build in a checkout stamps the
// commit's tag or a pseudo-version v0.0.0-DATE-REV, +dirty when the tree
// had uncommitted changes; "(devel)" when the build recorded no VCS
// information, as with -buildvcs=false, and when none is recorded) and
// the VCS revision go build stamps in a checkout, "modified" when its
// tree had uncommitted changes.
func versionText(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	vcs := "no VCS revision recorded"
	if rev != "" {
		vcs = "revision " + rev
		if modified == "true" {
			vcs += ", modified"
		}
	}
	return fmt.Sprintf("smolvmm %s (%s) built with %s", version, vcs, bi.GoVersion)
}
