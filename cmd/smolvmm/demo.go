package main

import (
	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/guests"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "boot the small multiboot guest built into smolvmm; it prints what it received",
		Description: `The demo guest prints the multiboot information smolvmm gave it (memory
map, command line, loader name, symbols), the CMOS clock and the PCI devices
it finds, then leaves through the debug-exit port (exit status 1, as QEMU's
isa-debug-exit maps a write of 0). Example:
   smolvmm demo -a "hello from the command line"`,
		Flags: runFlags(),
		Action: func(c *cli.Context) error {
			cfg, err := vmConfig(c)
			if err != nil {
				return err
			}
			cfg.Kernel = "demo"
			cfg.KernelImage = guests.Demo
			return runVM(c, cfg)
		},
	}
}
