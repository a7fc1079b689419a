package bench

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestQEMUTargetsMissing(t *testing.T) {
	missing := func(string) (string, error) { return "", exec.ErrNotFound }
	targets, skipped, err := QEMUTargets(QEMUSetup{Kernel: "k", MemoryMiB: 128}, missing)
	if !errors.Is(err, ErrNoQEMU) || targets != nil || skipped != nil {
		t.Fatalf("targets %v, skipped %v, error %v; want ErrNoQEMU only", targets, skipped, err)
	}
	if !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Errorf("error %q does not say what to install", err)
	}
}

// TestQEMUTargetsBadMAC: a MAC QEMU's mac= cannot take (not 6 bytes) is
// refused, naming it, before any boot: each would fail.
func TestQEMUTargetsBadMAC(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/qemu-system-i386", nil }
	for _, mac := range []net.HardwareAddr{{0x52, 0x54, 0x00}, {0x02, 0, 0, 0, 0, 0, 0, 1}} {
		targets, _, err := QEMUTargets(QEMUSetup{Kernel: "k", MemoryMiB: 64, UserNet: true, MAC: mac}, found)
		if err == nil || targets != nil || !strings.Contains(err.Error(), "MAC "+mac.String()) {
			t.Errorf("MAC %s: targets %v, error %v; want it refused, named", mac, targets, err)
		}
	}
}

func TestQEMUTargets(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/qemu-system-i386", nil }
	targets, skipped, err := QEMUTargets(QEMUSetup{Kernel: "k", MemoryMiB: 64}, found)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets)+len(skipped) != 2 {
		t.Fatalf("targets %v skipped %v: want qemu-kvm and qemu-tcg accounted for", targets, skipped)
	}
	tcg := targets[len(targets)-1]
	if tcg.Name != "qemu-tcg" || slices.Contains(tcg.Args, "-enable-kvm") || tcg.GuestBytes != 64<<20 {
		t.Errorf("tcg target %+v", tcg)
	}
	if len(targets) == 2 && (targets[0].Name != "qemu-kvm" || targets[0].Args[0] != "-enable-kvm") {
		t.Errorf("kvm target %+v", targets[0])
	}
}

func TestQEMUArgs(t *testing.T) {
	tests := []struct {
		name string
		in   QEMUSetup
		want []string
		not  []string
	}{
		{"plain", QEMUSetup{Kernel: "/k", Append: "a b", MemoryMiB: 128},
			[]string{"-kernel /k", "-append a b", "-m 128", "-serial stdio", "-device isa-debug-exit,iobase=0x501,iosize=2", "-nodefaults -no-reboot"},
			[]string{"-cpu", "-netdev"}},
		{"disks", QEMUSetup{Kernel: "/k", MemoryMiB: 64, Disks: []QEMUDisk{{Path: "a.img"}, {Path: "b.img", ReadOnly: true}}},
			[]string{"-drive file=a.img,if=none,format=raw,id=disk0", "-drive file=b.img,if=none,format=raw,id=disk1,readonly=on",
				"-device virtio-blk-pci,disable-modern=on,drive=disk1"}, nil},
		{"commas in paths", QEMUSetup{Kernel: "/k,1.elf", MemoryMiB: 64, Disks: []QEMUDisk{{Path: "c,d.img"}, {Path: "/a,,b/e,.img", ReadOnly: true}}},
			[]string{"-kernel /k,1.elf", "-drive file=c,,d.img,if=none,format=raw,id=disk0",
				"-drive file=/a,,,,b/e,,.img,if=none,format=raw,id=disk1,readonly=on"}, nil},
		{"colons in relative paths", QEMUSetup{Kernel: "k:1.elf", MemoryMiB: 64, Disks: []QEMUDisk{{Path: "c:d.img"}, {Path: "e/f:g.img"}, {Path: "/h:i.img"}, {Path: "j:k,l/m.img", ReadOnly: true}}},
			[]string{"-kernel k:1.elf", "-drive file=./c:d.img,if=none,format=raw,id=disk0", "-drive file=e/f:g.img,if=none,format=raw,id=disk1",
				"-drive file=/h:i.img,if=none,format=raw,id=disk2", "-drive file=./j:k,,l/m.img,if=none,format=raw,id=disk3,readonly=on"}, nil},
		{"user network", QEMUSetup{Kernel: "/k", MemoryMiB: 64, UserNet: true, Forwards: []string{"tcp:127.0.0.1:8080-:80", "udp:0.0.0.0:53-:53"}},
			[]string{"-netdev user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:53-:53", "-device virtio-net-pci,disable-modern=on,netdev=net0"}, nil},
		// QEMU's -device takes the disk's serial as serial=, a comma in
		// it written twice as in every option list; the card's address
		// as mac=, six bytes in hex separated by colons.
		{"serials", QEMUSetup{Kernel: "/k", MemoryMiB: 64, Disks: []QEMUDisk{{Path: "a.img", Serial: "vol-1"}, {Path: "b.img", ReadOnly: true, Serial: "x,y=z,"}, {Path: "c.img"}}},
			[]string{"-device virtio-blk-pci,disable-modern=on,drive=disk0,serial=vol-1", "-device virtio-blk-pci,disable-modern=on,drive=disk1,serial=x,,y=z,,",
				"-device virtio-blk-pci,disable-modern=on,drive=disk2"}, nil},
		{"mac", QEMUSetup{Kernel: "/k", MemoryMiB: 64, UserNet: true, MAC: net.HardwareAddr{0x52, 0x54, 0x00, 0xab, 0x0c, 0x01}},
			[]string{"-netdev user,id=net0", "-device virtio-net-pci,disable-modern=on,netdev=net0,mac=52:54:00:ab:0c:01"}, nil},
		{"mac without a card", QEMUSetup{Kernel: "/k", MemoryMiB: 64, MAC: net.HardwareAddr{0x52, 0x54, 0x00, 0xab, 0x0c, 0x01}},
			nil, []string{"-netdev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := QEMUArgs(tt.in)
			pairs := map[string]bool{}
			for i := 0; i+1 < len(args); i++ {
				pairs[args[i]+" "+args[i+1]] = true
			}
			for _, w := range tt.want {
				if !pairs[w] {
					t.Errorf("args %q lack %q", args, w)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(args, n) {
					t.Errorf("args %q contain %q", args, n)
				}
			}
		})
	}
}

func ExampleQEMUArgs() {
	fmt.Println(strings.Join(QEMUArgs(QEMUSetup{Kernel: "demo.elf", Append: "console=com", MemoryMiB: 128}), " "))
	// Output: -M pc -m 128 -kernel demo.elf -append console=com -serial stdio -display none -monitor none -nodefaults -no-reboot -device isa-debug-exit,iobase=0x501,iosize=2
}
