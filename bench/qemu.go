package bench

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
)

// QEMUBinary is the QEMU run when a benchmark compares with QEMU.
const QEMUBinary = "qemu-system-i386"

// ErrNoQEMU is wrapped when the QEMU binary is not installed.
var ErrNoQEMU = errors.New(QEMUBinary + " not found: install it (Debian: apt-get install qemu-system-x86)")

// QEMUSetup is the guest QEMU boots, with devices equivalent to smolvmm's:
// COM1 on standard output, the debug-exit port at 0x501, legacy
// virtio-blk-pci disks with their serials and a legacy virtio-net-pci card
// with its MAC on the user network with its port forwards.
type QEMUSetup struct {
	Kernel    string     // the kernel image's path, any name (-kernel takes it whole)
	Append    string     // the kernel's command line
	MemoryMiB int        // guest RAM in MiB
	Disks     []QEMUDisk // the disks, in bus order
	// UserNet adds the NIC on QEMU's user network (slirp).
	UserNet bool
	// MAC is the NIC's address, 6 bytes; nil leaves QEMU's default
	// (52:54:00:12:34:56), which is not the one smolvmm gives.
	MAC net.HardwareAddr
	// Forwards are hostfwd rules, "tcp:127.0.0.1:8080-:80".
	Forwards []string
}

// QEMUDisk is one disk image; ReadOnly maps smolvmm's ",ro".
type QEMUDisk struct {
	Path     string // the image's path, any name (QEMUArgs doubles its commas)
	ReadOnly bool
	// Serial is what the device answers the guest's GET_ID with, any
	// text (QEMUArgs doubles its commas); "" gives QEMU's, none at all,
	// where smolvmm derives one from the path (blk.DeriveSerial).
	Serial string
}

// QEMUTargets returns the qemu-kvm target (when /dev/kvm can be opened)
// and the qemu-tcg target, using the QEMU binary found on PATH by lookPath
// (exec.LookPath when nil). Without QEMU it returns ErrNoQEMU; skipped
// lists the systems left out and why.
func QEMUTargets(s QEMUSetup, lookPath func(string) (string, error)) (targets []Target, skipped []string, err error) {
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if n := len(s.MAC); n != 0 && n != 6 {
		// QEMU's mac= takes six bytes only, and would fail every boot.
		return nil, nil, fmt.Errorf("QEMU setup: MAC %s has %d bytes; a NIC's address has 6", s.MAC, n)
	}
	path, err := lookPath(QEMUBinary)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%v)", ErrNoQEMU, err)
	}
	args := QEMUArgs(s)
	guest := uint64(s.MemoryMiB) << 20
	if err := openKVM(); err != nil {
		skipped = append(skipped, fmt.Sprintf("qemu-kvm: /dev/kvm: %v", err))
	} else {
		targets = append(targets, Target{Name: "qemu-kvm", Path: path, Args: append([]string{"-enable-kvm"}, args...), GuestBytes: guest, Success: DebugExitSuccess})
	}
	targets = append(targets, Target{Name: "qemu-tcg", Path: path, Args: append([]string{"-accel", "tcg"}, args...), GuestBytes: guest, Success: DebugExitSuccess})
	return targets, skipped, nil
}

// QEMUArgs builds QEMU's arguments for s. QEMU's default CPU model is used:
// -cpu host aborts under nested KVM.
func QEMUArgs(s QEMUSetup) []string {
	args := []string{
		"-M", "pc", "-m", strconv.Itoa(s.MemoryMiB),
		"-kernel", s.Kernel, "-append", s.Append,
		"-serial", "stdio", "-display", "none", "-monitor", "none", "-nodefaults", "-no-reboot",
		"-device", "isa-debug-exit,iobase=0x501,iosize=2",
	}
	for i, d := range s.Disks {
		id := fmt.Sprintf("disk%d", i)
		drive := "file=" + qemuOptValue(qemuFilePath(d.Path)) + ",if=none,format=raw,id=" + id
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		device := "virtio-blk-pci,disable-modern=on,drive=" + id
		if d.Serial != "" {
			device += ",serial=" + qemuOptValue(d.Serial)
		}
		args = append(args, "-drive", drive, "-device", device)
	}
	if s.UserNet {
		netdev := "user,id=net0"
		for _, f := range s.Forwards {
			netdev += ",hostfwd=" + f
		}
		device := "virtio-net-pci,disable-modern=on,netdev=net0"
		if len(s.MAC) > 0 {
			device += ",mac=" + s.MAC.String()
		}
		args = append(args, "-netdev", netdev, "-device", device)
	}
	return args
}

// qemuFilePath is path as -drive file= takes it as a file name: QEMU
// reads a name with a colon before its first slash ("a:b.img") as a
// protocol ("a") and its options, so such a relative name is given
// starting "./", which no protocol does.
func qemuFilePath(path string) string {
	colon := strings.IndexByte(path, ':')
	slash := strings.IndexByte(path, '/')
	if colon >= 0 && (slash < 0 || colon < slash) {
		return "./" + path
	}
	return path
}

// qemuOptValue is v as a value in a QEMU option list (-drive
// file=V,if=none,...), where a single comma would end it and start the
// next option: QEMU reads ",," as one comma of the value.
func qemuOptValue(v string) string {
	return strings.ReplaceAll(v, ",", ",,")
}
