package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// ErrQEMUKernel is wrapped when QEMU's -kernel cannot boot a kernel that
// smolvmm boots.
var ErrQEMUKernel = errors.New("QEMU cannot boot this kernel")

// QEMUKernel returns a file QEMU's -kernel boots as the kernel at path:
// QEMU's x86 loader takes multiboot kernels, uncompressed only, so a
// gzipped one is written decompressed into dir. A kernel without a
// multiboot header is refused: a NetBSD ELF kernel, booted through
// NetBSD's native /boot handoff, which QEMU does not perform, with
// ErrQEMUKernel, and any other file as no kernel at all.
func QEMUKernel(path, dir string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	image, gzipped, err := kernelimage.Decompress(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	r := bytes.NewReader(image)
	if _, _, mbErr := multiboot.FindHeader(r, int64(len(image))); mbErr != nil {
		// Only a NetBSD ELF kernel boots without a multiboot header,
		// through NetBSD's native handoff.
		if _, nbErr := netbsdboot.Detect(r, int64(len(image))); nbErr != nil {
			return "", fmt.Errorf("%s is not a kernel: %w; %w", path, mbErr, nbErr)
		}
		return "", fmt.Errorf("%w: %s boots through NetBSD's native /boot handoff, which QEMU's -kernel does not perform (%v)", ErrQEMUKernel, path, mbErr)
	}
	if !gzipped {
		return path, nil
	}
	out := filepath.Join(dir, "qemu-"+filepath.Base(path)+".elf")
	if err := os.WriteFile(out, image, 0o644); err != nil {
		return "", err
	}
	return out, nil
}
