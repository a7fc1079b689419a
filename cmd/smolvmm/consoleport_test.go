package main

import (
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootargs"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestConsolePortIsTheUART: the one console_addr= the boot loaders accept
// is where the machine puts its UART (bootargs cannot import vmm, which
// imports the loaders); if COM1 moves, the check must move with it.
func TestConsolePortIsTheUART(t *testing.T) {
	if bootargs.UARTPort != vmm.PortCOM1 {
		t.Errorf("bootargs.UARTPort is %#x, the machine's UART is at %#x", bootargs.UARTPort, vmm.PortCOM1)
	}
}
