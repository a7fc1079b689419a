package pagemap

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestAbsent: in a fresh anonymous mapping, the pages written and the one
// read (mapped to the zero page) are populated, every other is absent;
// memory that is not page-aligned is refused.
func TestAbsent(t *testing.T) {
	ps := os.Getpagesize()
	const pages = 130 // past two words of the set
	mem, err := unix.Mmap(-1, 0, pages*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	mem[3*ps] = 1
	mem[64*ps+ps-1] = 2
	mem[129*ps] = 3
	sink = mem[20*ps+5] // read only
	populated := map[int]bool{3: true, 64: true, 129: true, 20: true}
	r, err := Open()
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer r.Close()
	set, err := r.Absent(mem, ps)
	if err != nil {
		t.Fatal(err)
	}
	for p := range pages {
		if absent := set[p/64]&(1<<(p%64)) != 0; absent == populated[p] {
			t.Errorf("page %d: absent %v, want %v", p, absent, !populated[p])
		}
	}
	if _, err := r.Absent(mem[1:ps+1], ps); err == nil {
		t.Error("unaligned memory accepted")
	}
}

// sink keeps a read the test makes from being compiled away.
var sink byte

// pfnMask is the page frame number's bits of a pagemap entry (0 to 54).
const pfnMask = 1<<55 - 1

// TestNoFrameNumbers: the descriptor Open returns shows no page frame
// numbers, even to a process with CAP_SYS_ADMIN: the kernel decides at the
// open, so one opened by root showed them still after the process dropped
// to another user (a VMM started as root with --user). The threads keep
// their capabilities.
func TestNoFrameNumbers(t *testing.T) {
	mem, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	mem[0] = 1
	off := int64(uintptr(unsafe.Pointer(&mem[0]))/uintptr(os.Getpagesize())) * 8
	entry := func(f *os.File) uint64 {
		var b [8]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(b[:])
	}
	plain, err := os.Open(Path)
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer plain.Close()
	if entry(plain)&pfnMask == 0 {
		t.Skip("this process is not shown page frame numbers (no CAP_SYS_ADMIN): nothing to hide")
	}
	before := threadCaps(t)
	r, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if e := entry(r.f); e&present == 0 || e&pfnMask != 0 {
		t.Errorf("entry of a written page %#x: want present, frame number 0", e)
	}
	for tid, caps := range threadCaps(t) {
		if old, ok := before[tid]; ok && caps != old {
			t.Errorf("thread %s: capabilities %s after Open, %s before", tid, caps, old)
		}
	}
}

// threadCaps returns each thread's CapEff and CapPrm lines.
func threadCaps(t *testing.T) map[string]string {
	paths, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	caps := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "CapEff:") || strings.HasPrefix(l, "CapPrm:") {
				caps[filepath.Base(filepath.Dir(p))] += l + " "
			}
		}
	}
	return caps
}

// Open leaves every thread's capabilities as they were, the thread it
// opens on too, when the caller's thread has other ones: it sets aside
// and restores the opening thread's own, not the caller's (the opening
// thread, back in the runtime's pool, had lost a capability of the
// caller's thread lacked).
func TestOpenKeepsOtherThreadsCaps(t *testing.T) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		t.Skipf("capget: %v", err)
	}
	const netRaw = unix.CAP_NET_RAW
	if caps[sysAdmin/32].Effective&(1<<(sysAdmin%32)) == 0 || caps[netRaw/32].Effective&(1<<(netRaw%32)) == 0 {
		t.Skip("needs CAP_SYS_ADMIN and CAP_NET_RAW")
	}
	before := threadCaps(t)
	errc := make(chan error, 1)
	var caller string // the thread that calls Open, changed by the test
	go func() {
		// This thread, without CAP_NET_RAW, calls Open; it ends with
		// the goroutine, its capabilities not restored.
		runtime.LockOSThread()
		caller = strconv.Itoa(unix.Gettid())
		without := caps
		without[netRaw/32].Effective &^= 1 << (netRaw % 32)
		if err := unix.Capset(&hdr, &without[0]); err != nil {
			errc <- err
			return
		}
		for i := 0; i < 10; i++ {
			r, err := Open()
			if err != nil {
				errc <- err
				return
			}
			r.Close()
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for tid, caps := range threadCaps(t) {
		if old, ok := before[tid]; ok && caps != old && tid != caller {
			t.Errorf("thread %s: capabilities %s after Open, %s before", tid, caps, old)
		}
	}
}
