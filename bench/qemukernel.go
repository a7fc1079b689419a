package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	return QEMUKernelContext(context.Background(), path, dir)
}

// QEMUKernelContext is QEMUKernel stopped by ctx: between its steps and
// during the write of the decompressed kernel (hundreds of MiB), whose
// partial file is then removed, as on a failed write. A stopped call
// returns an error wrapping ctx's.
func QEMUKernelContext(ctx context.Context, path, dir string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	image, gzipped, err := kernelimage.Decompress(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
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
	if err := writeFileCtx(ctx, out, image); err != nil {
		return "", err
	}
	return out, nil
}

// writeChunk is how much writeFileCtx writes between looks at its
// context: a few milliseconds of a disk's writing.
const writeChunk = 4 << 20

// writeFileCtx writes data to a new file name, mode 0644, removing it if
// the write fails or ctx ends before it is done (a kernel's hundreds of
// MiB take a while).
func writeFileCtx(ctx context.Context, name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = writeChunks(ctx, f, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// writeChunks writes data to w writeChunk bytes at a time, stopping with
// ctx's error once ctx has ended.
func writeChunks(ctx context.Context, w io.Writer, data []byte) error {
	for len(data) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(data), writeChunk)
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}
