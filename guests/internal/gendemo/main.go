// Command gendemo rebuilds guests/bin/demo.elf from the guest sources; it is
// run by `go generate ./guests`.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/smolvmm/smolvmm/guests"
)

func main() {
	if err := gen(); err != nil {
		fmt.Fprintln(os.Stderr, "gendemo:", err)
		os.Exit(1)
	}
}

func gen() error {
	tmp, err := os.MkdirTemp("", "gendemo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	path, err := guests.BuildIn(tmp, "demo")
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join("bin", "demo.elf"), b, 0o644); err != nil {
		return fmt.Errorf("writing bin/demo.elf: %w", err)
	}
	// The toolchain is recorded so the freshness test compares like with like.
	v, err := guests.Toolchain()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join("bin", "demo.toolchain"), []byte(v), 0o644)
}
