package devices_test

import (
	"fmt"
	"os"
	"time"

	"github.com/smolvmm/smolvmm/vmm/devices"
)

// line is an interrupt line that prints its level changes.
type line struct{}

func (line) Set(level bool) { fmt.Println("IRQ", level) }

// The VMM registers a UART at COM1 (0x3F8) and passes the console's input
// to Receive; the guest's register accesses arrive at offsets 0-7.
func ExampleUART() {
	const (
		thr = 0 // transmit holding (write) and receive buffer (read)
		ier = 1 // interrupt enable
		lsr = 5 // line status
	)
	u := devices.NewUART(os.Stdout, line{})

	u.Write(thr, []byte{'o'})
	u.Write(thr, []byte{'k'})
	u.Write(thr, []byte{'\n'})

	u.Write(ier, []byte{0x01}) // interrupt when data is received
	u.Receive([]byte("y"))
	b := make([]byte, 1)
	u.Read(lsr, b)
	fmt.Printf("LSR %#x\n", b[0]) // data ready, transmitter empty
	u.Read(thr, b)
	fmt.Printf("read %q\n", b[0])
	u.Read(lsr, b)
	fmt.Printf("LSR %#x\n", b[0])
	// Output:
	// ok
	// IRQ true
	// LSR 0x61
	// IRQ false
	// read 'y'
	// LSR 0x60
}

// The guest reads the clock through index port 0x70 (offset 0) and data
// port 0x71 (offset 1), in BCD and 24-hour format until it programs
// register B otherwise.
func ExampleRTC() {
	host := time.Date(2026, time.December, 4, 21, 7, 5, 0, time.UTC)
	rtc := devices.NewRTC(func() time.Time { return host }, 64<<20)

	reg := func(i byte) byte {
		rtc.Write(0, []byte{i})
		b := make([]byte, 1)
		rtc.Read(1, b)
		return b[0]
	}
	fmt.Printf("%02x%02x-%02x-%02x %02x:%02x:%02x\n",
		reg(0x32), reg(0x09), reg(0x08), reg(0x07), reg(0x04), reg(0x02), reg(0x00))
	// Extended memory above 1 MiB, in KiB, at 0x17 (low) and 0x18 (high).
	fmt.Println(int(reg(0x18))<<8|int(reg(0x17)), "KiB")
	// Output:
	// 2026-12-04 21:07:05
	// 64512 KiB
}

// The guest sets the clock as NetBSD's rtcput does: SET in register B
// holds the time registers while it writes them, and the new time runs on
// from when SET goes off.
func ExampleRTC_set() {
	host := time.Date(2026, time.December, 4, 21, 7, 5, 0, time.UTC)
	rtc := devices.NewRTC(func() time.Time { return host }, 64<<20)
	write := func(i, v byte) {
		rtc.Write(0, []byte{i})
		rtc.Write(1, []byte{v})
	}
	read := func(i byte) byte {
		rtc.Write(0, []byte{i})
		b := make([]byte, 1)
		rtc.Read(1, b)
		return b[0]
	}

	write(0x0B, 0x82) // SET, 24-hour, BCD
	write(0x09, 0x30) // year 30
	write(0x04, 0x08) // 08 hours
	write(0x0B, 0x02) // SET off: the new time takes effect

	host = host.Add(90 * time.Second)
	fmt.Printf("%02x%02x, %02x:%02x:%02x\n", read(0x32), read(0x09), read(0x04), read(0x02), read(0x00))
	// Output:
	// 2030, 08:08:35
}

// A test guest ends the VM by writing a value to the debug-exit port
// (0x501), here a 16-bit outw; the VMM's ExitFunc then ends it with status
// (code<<1)|1, as QEMU's isa-debug-exit does.
func ExampleDebugExit() {
	d := &devices.DebugExit{Exit: func(kind devices.ExitKind, code uint32) {
		fmt.Printf("debug port: %v, code %#x\n", kind == devices.ExitDebugPort, code)
	}}
	d.Write(0, []byte{0x02, 0x01})
	// Output:
	// debug port: true, code 0x102
}
