package guests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/smolvmm/smolvmm/guests"
)

// The demo guest is always available, embedded in the binary.
func ExampleDemo() {
	fmt.Println(string(guests.Demo[:4]) == "\x7fELF")
	// Output: true
}

// Build compiles a guest with the host's gcc and ld (which the tests
// require); a missing toolchain gives an error that names it, and this
// example fails.
func ExampleBuild() {
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
	// Output: [bad counter demo demo-virt frag hammer handoff irq long64 nbboot paging up vblk vnet vtcp]
}

// BuildIn keeps the build in a directory of the caller's choosing.
func ExampleBuildIn() {
	dir, err := os.MkdirTemp("", "guests-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path, err := guests.BuildIn(dir, "demo-virt")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(filepath.Base(path))
	// Output: demo-virt.elf
}

// Toolchain gives the first line of gcc's and of ld's --version: what the
// guests are built with, for a test's log.
func ExampleToolchain() {
	v, err := guests.Toolchain()
	if err != nil {
		fmt.Println("no gcc/ld:", err)
		return
	}
	lines := strings.Split(strings.TrimSuffix(v, "\n"), "\n")
	fmt.Println(len(lines), "lines; gcc:", strings.HasPrefix(lines[0], "gcc"), "ld:", strings.Contains(lines[1], "ld"))
	// Output: 2 lines; gcc: true ld: true
}
