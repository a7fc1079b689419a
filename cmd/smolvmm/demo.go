package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// demoJailUsage is demo's --jail help: run's speaks of --net, which demo,
// with no network card, lacks.
const demoJailUsage = "when started as root: run the VMM in new mount, PID, IPC and UTS namespaces, and in a network namespace of its own"

// demoModuleUsage is demo's --module help: run's speaks of a NetBSD
// kernel's module types, and the built-in guest is a multiboot kernel.
const demoModuleUsage = "boot module `FILE`, optionally followed by ,args for its multiboot command line (repeatable; the guest prints where each was loaded and its command line; a comma in FILE is written ,,)"

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "boot the small multiboot guest built into smolvmm; it prints what it received",
		Description: `The demo guest prints the multiboot information smolvmm gave it (memory
map, command line, loader name, symbols), the CMOS clock and the PCI devices
it finds, then leaves through the debug-exit port by writing 0, which this
command reports as success (smolvmm run would give QEMU's status 1). Example:
   smolvmm demo -a "hello from the command line"`,
		// The demo guest has no network card: nothing could answer a
		// --ready-port.
		Flags: withUsage(withUsage(withUsage(withoutFlags(runFlags(), map[string]bool{"ready-port": true}), "jail", demoJailUsage),
			"boot", "boot `PROTOCOL`: auto or multiboot (the built-in guest is a multiboot kernel)"),
			"module", demoModuleUsage),
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, 0, ""); err != nil {
				return err
			}
			if ran, err := runJailed(c, os.Args); ran { // jail.go
				return err
			}
			ctx, stop := runSignals(c.Context) // run.go
			defer stop()
			cfg, cleanup, err := vmConfig(ctx, c)
			defer cleanup()
			if err != nil {
				return interrupted(ctx, err)
			}
			cfg.Kernel = "demo"
			cfg.KernelImage = guests.Demo
			return runVM(ctx, c, cfg, demoStatus)
		},
	}
}

// demoStatus treats the demo guest's normal end (debug-exit 0) as success.
func demoStatus(e vmm.Exit) int {
	if e.Reason == vmm.ExitDebug && e.Code == 0 {
		return 0
	}
	return e.Status()
}
