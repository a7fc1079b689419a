package guests_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/smolvmm/smolvmm/guests"
)

// The demo guest is always available, embedded in the binary.
func ExampleDemo() {
	fmt.Println(string(guests.Demo[:4]) == "\x7fELF")
	// Output: true
}

// Build compiles a guest with the host's gcc and ld; a missing toolchain
// gives an error that names it.
func ExampleBuild() {
	if _, err := exec.LookPath("gcc"); err != nil {
		fmt.Println("vblk guest at vblk.elf")
		return
	}
	path, err := guests.Build("vblk")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("vblk guest at", path[len(path)-8:])
	// Output: vblk guest at vblk.elf
}

func ExampleVblkPattern() {
	p := guests.VblkPattern(7)
	fmt.Printf("%d bytes, %q\n", len(p), p[:26])
	// Output: 512 bytes, "smolvmm-write-test seq=7\n\x19"
}

func ExampleNames() {
	fmt.Println(guests.Names())
	// Output: [bad demo demo-virt hammer handoff irq long64 nbboot paging up vblk vnet]
}

// BuildIn keeps the build in a directory of the caller's choosing.
func ExampleBuildIn() {
	dir, err := os.MkdirTemp("", "guests-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if _, err := exec.LookPath("gcc"); err != nil {
		fmt.Println("demo-virt.elf")
		return
	}
	path, err := guests.BuildIn(dir, "demo-virt")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(filepath.Base(path))
	// Output: demo-virt.elf
}

func ExampleToolchain() {
	v, err := guests.Toolchain()
	if err != nil {
		fmt.Println("no gcc/ld:", err)
		return
	}
	fmt.Println(strings.Count(v, "\n"), "version lines")
}
