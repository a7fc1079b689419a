// Package pagemap reads /proc/self/pagemap, the kernel's record of which
// virtual pages of this process are populated: mapped to a page frame
// (present) or to a page swapped out. A page of an anonymous private
// mapping that is neither has never been written (or was discarded) and
// reads as zeros; one of a private file mapping reads as the file's bytes,
// which need not be zeros. mincore cannot tell: it reports a page swapped
// out as absent.
package pagemap

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Path is the file Open opens.
const Path = "/proc/self/pagemap"

// The bits of a pagemap entry (the kernel's
// Documentation/admin-guide/mm/pagemap.rst).
const (
	present = 1 << 63
	swapped = 1 << 62
)

// entriesPerRead bounds one read: 8 bytes per page, 32 KiB per read.
const entriesPerRead = 4096

// Reader reads this process's pagemap.
type Reader struct {
	f *os.File
}

// Open opens the pagemap. A process may read its own without privilege
// (the page frame numbers then read as zero; this package uses only the
// flags). Open it before a seccomp filter or a chroot that would refuse
// the open.
//
// The descriptor never shows page frame numbers, whoever holds it: the
// kernel shows them through a descriptor opened with CAP_SYS_ADMIN, and
// goes on doing so after the process has dropped its privileges (a VMM
// started as root that runs as another user, which could then learn
// where its memory is in physical memory, a help to Rowhammer attacks).
// A process with CAP_SYS_ADMIN opens it with the capability set aside:
// out of the effective set of the opening thread, for the open only.
func Open() (*Reader, error) {
	type result struct {
		r   *Reader
		err error
	}
	done := make(chan result, 1)
	// Capabilities are a thread's: they are read, set aside and restored
	// on one thread, locked to this goroutine, which it gives back to the
	// runtime only with its own capabilities as they were (if they cannot
	// be restored, the thread ends with the goroutine).
	go func() {
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		if err := unix.Capget(&hdr, &caps[0]); err != nil || caps[sysAdmin/32].Effective&(1<<(sysAdmin%32)) == 0 {
			// Without the capability (or a way to know) the kernel
			// hides the numbers anyway.
			runtime.UnlockOSThread()
			r, err := open()
			done <- result{r, err}
			return
		}
		without := caps
		without[sysAdmin/32].Effective &^= 1 << (sysAdmin % 32)
		if err := unix.Capset(&hdr, &without[0]); err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("pagemap: set CAP_SYS_ADMIN aside to open %s: capset: %w", Path, err)}
			return
		}
		r, err := open()
		if unix.Capset(&hdr, &caps[0]) == nil {
			runtime.UnlockOSThread()
		} // else the thread, short of a capability, ends with the goroutine
		done <- result{r, err}
	}()
	res := <-done
	return res.r, res.err
}

// sysAdmin is CAP_SYS_ADMIN's bit in the capability sets.
const sysAdmin = unix.CAP_SYS_ADMIN

func open() (*Reader, error) {
	f, err := os.Open(Path)
	if err != nil {
		return nil, err
	}
	return &Reader{f: f}, nil
}

// Close closes the pagemap.
func (r *Reader) Close() error { return r.f.Close() }

// Absent returns a bit per page of mem, whose start and length are
// multiples of pageSize (the system's page size): set for the pages that
// are neither present nor swapped out, clear for the others. It reads the
// pagemap with pread only (a descriptor already open is all it needs).
// The answer holds as long as nothing touches mem: a page read or written
// afterwards may be populated since.
func (r *Reader) Absent(mem []byte, pageSize int) ([]uint64, error) {
	if len(mem) == 0 {
		return nil, nil
	}
	start := uintptr(unsafe.Pointer(&mem[0]))
	if pageSize <= 0 || start%uintptr(pageSize) != 0 || len(mem)%pageSize != 0 {
		return nil, fmt.Errorf("pagemap: memory at %#x of %#x bytes is not page-aligned (page size %d)", start, len(mem), pageSize)
	}
	n := len(mem) / pageSize
	set := make([]uint64, (n+63)/64)
	buf := make([]byte, 8*min(n, entriesPerRead))
	for page := 0; page < n; {
		k := min(n-page, entriesPerRead)
		off := int64(start/uintptr(pageSize)+uintptr(page)) * 8
		got, err := r.f.ReadAt(buf[:8*k], off)
		if got < 8*k {
			return nil, fmt.Errorf("pagemap: read of %d entries at page %#x: %d bytes: %w", k, start/uintptr(pageSize)+uintptr(page), got, err)
		}
		for i := range k {
			if binary.LittleEndian.Uint64(buf[8*i:])&(present|swapped) == 0 {
				p := page + i
				set[p/64] |= 1 << (p % 64)
			}
		}
		page += k
	}
	return set, nil
}
