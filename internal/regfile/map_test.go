package regfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

func TestMap(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse")
	if err := os.WriteFile(sparse, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 1<<30); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		limit int64
		want  []byte
		err   error
	}{
		{"regular", small, 6, []byte("kernel"), nil},
		{"empty", empty, 6, []byte{}, nil},
		{"too large", small, 5, nil, ErrTooLarge},
		{"sparse GiB", sparse, 512 << 20, nil, ErrTooLarge},
		{"FIFO without writer", fifo, 1 << 20, nil, ErrNotRegular},
		{"directory", dir, 1 << 20, nil, ErrNotRegular},
		{"missing", filepath.Join(dir, "none"), 1 << 20, nil, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Map(tt.path, tt.limit)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Map(%s, %d) error %v, want %v", tt.path, tt.limit, err, tt.err)
			}
			if err != nil {
				return
			}
			defer Unmap(data)
			if data == nil || !bytes.Equal(data, tt.want) {
				t.Fatalf("Map(%s) = %q, want %q", tt.path, data, tt.want)
			}
		})
	}
}

// TestMapUnmappable: a file its file system will not map (sysfs: mmap's
// ENODEV) or that says it is empty (procfs: size 0, its bytes made as it
// is read) is read instead, to the same bytes os.ReadFile reads and
// within the same limit as ReadFile, into memory mapped for them that
// Unmap gives back: read into the heap, they went back to the kernel
// only at a collection, and not all of them then. Map refused the first
// ("mmap: no such device") and gave the second as empty.
func TestMapUnmappable(t *testing.T) {
	tests := []struct {
		name  string
		paths []string // the first present is used
		limit int64    // below the file's bytes: refused
	}{
		{"sysfs, size 4096, no mmap", []string{"/sys/kernel/mm/transparent_hugepage/enabled", "/sys/devices/system/cpu/possible"}, 2},
		{"procfs, size 0", []string{"/proc/sys/kernel/osrelease", "/proc/version"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			for _, p := range tt.paths {
				if _, err := os.Stat(p); err == nil {
					path = p
					break
				}
			}
			if path == "" {
				t.Skipf("none of %v here (no such file system mounted)", tt.paths)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Skipf("%s cannot be read here: %v", path, err)
			}
			if int64(len(want)) <= tt.limit {
				t.Skipf("%s has %d bytes, too few to pass the limit %d", path, len(want), tt.limit)
			}
			data, err := Map(path, 1<<20)
			if err != nil {
				t.Fatalf("Map(%s): %v", path, err)
			}
			if !bytes.Equal(data, want) {
				t.Fatalf("Map(%s) = %q, want %q (os.ReadFile)", path, data, want)
			}
			if !Mapped(data) {
				t.Fatalf("Map(%s): its bytes are not in memory Unmap releases", path)
			}
			start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
			if !inMaps(t, start) {
				t.Fatalf("Map(%s): %#x in no mapping of /proc/self/maps", path, start)
			}
			if err := Unmap(data); err != nil {
				t.Fatalf("Unmap of %s's bytes: %v", path, err)
			}
			if inMaps(t, start) {
				t.Fatalf("after Unmap of %s's bytes, %#x is still mapped", path, start)
			}
			if _, err := Map(path, tt.limit); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Map(%s, %d): %v, want %v", path, tt.limit, err, ErrTooLarge)
			}
		})
	}
}

// inMaps reports whether addr is in one of this process's mappings.
func inMaps(t *testing.T, addr uintptr) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("/proc/self/maps: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && lo <= addr && addr < hi {
			return true
		}
	}
	return false
}

// Unmap releases only what Map mapped: bytes it did not map (the heap's,
// an empty slice, nil) are nothing to release.
func TestUnmapOnlyMappings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kernel")
	if err := os.WriteFile(path, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := Map(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !Mapped(data) || Mapped([]byte("heap bytes")) || Mapped(nil) {
		t.Errorf("Mapped: the mapping %v, heap bytes %v, nil %v; want true, false, false", Mapped(data), Mapped([]byte("heap bytes")), Mapped(nil))
	}
	for i, b := range [][]byte{data, []byte("heap bytes"), {}, nil} {
		if err := Unmap(b); err != nil {
			t.Errorf("Unmap #%d (%d bytes): %v, want nil", i, len(b), err)
		}
	}
}

// A mapped file cut shorter faults where its bytes were: Guard makes that
// an error naming the file, the region and the offset.
func TestGuardCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kernel")
	page := os.Getpagesize()
	if err := os.WriteFile(path, bytes.Repeat([]byte{'k'}, 4*page), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := Map(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(data)
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}
	other := []byte("heap bytes")
	var sum int
	err = Guard(func() error {
		for _, b := range data {
			sum += int(b)
		}
		return nil
	}, Region{Name: "other", Data: other}, Region{Name: path, Data: data})
	var cut *CutError
	if !errors.As(err, &cut) || !errors.Is(err, ErrCut) {
		t.Fatalf("Guard over a read past the cut: %v, want a *CutError", err)
	}
	if cut.Name != path || cut.Index != 1 || cut.Offset != int64(page) {
		t.Fatalf("CutError %+v, want %s, region 1, offset %d", *cut, path, page)
	}
	if sum != page*'k' {
		t.Fatalf("read %d before the fault, want the first page's %d", sum, page*'k')
	}
	// Bytes still there read as before, under Guard or not.
	if err := Guard(func() error { sink = data[page-1]; return nil }, Region{Name: path, Data: data}); err != nil || sink != 'k' {
		t.Fatalf("reading the kept page: %q, %v", sink, err)
	}
}

// sink keeps the reads of a mapping the compiler would drop.
var sink byte

// What Guard does not watch goes on as it was: another panic, or a fault
// outside the regions (here one of a mapping it was not given).
func TestGuardOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kernel")
	if err := os.WriteFile(path, make([]byte, 2*os.Getpagesize()), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := Map(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(data)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		fn   func() error
	}{
		{"panic", func() error { panic("loader bug") }},
		{"fault elsewhere", func() error { sink = data[0]; return nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Guard swallowed the panic")
				}
			}()
			_ = Guard(tt.fn, Region{Name: "other", Data: []byte("x")})
		})
	}
}

// A file whose size says 0 (a kernel's pseudo-file) is read up to
// PseudoFileLimit, not up to the limit given: /proc/self/pagemap, 8 bytes
// for each page of the address space, was read up to the whole limit (a
// module's is guest RAM), with twice that in memory. A pipe fed without
// end stands in for such a file.
func TestMapFilePseudoFileBounded(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}()
	_, err = MapFile(r, 0, 1<<30)
	r.Close()
	<-done
	w.Close()
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Limit != PseudoFileLimit {
		t.Fatalf("MapFile of a file whose size says 0, limit 1 GiB: %v, want a *TooLargeError at %d bytes", err, PseudoFileLimit)
	}
}
