// Package devices holds the legacy PC devices smolvmm emulates in user space,
// one per file: the 16550A UART, the MC146818 CMOS/RTC, and the system
// control ports a PC guest uses to reset or to leave the VM. Each is a
// bus.Device with no KVM in it, so tests drive it directly.
package devices
