package vmm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/pagemap"
	"github.com/smolvmm/smolvmm/snapshot"
)

// openPagemap opens /proc/self/pagemap for the machine's snapshots, once:
// Run does before Config.BeforeRun (whose seccomp filter or chroot would
// refuse the open) when a snapshot is configured, a snapshot otherwise at
// its first. Without it, a snapshot reads every page.
func (m *Machine) openPagemap() *pagemap.Reader {
	m.pagemapMu.Lock()
	defer m.pagemapMu.Unlock()
	if !m.pagemapTried {
		m.pagemapTried = true
		if r, err := pagemap.Open(); err == nil {
			m.pagemap = r
		} else if m.cfg.Verbose {
			m.logf("snapshot: %v: every page of guest memory is read to find the zero ones", err)
		}
	}
	return m.pagemap
}

// errFileShort is dropFileData's failure on a memory file that ends
// before the memory does.
var errFileShort = errors.New("the memory file ends before guest memory")

// knownZero returns the pages of guest memory mem that are zero without
// reading them, nil when it cannot tell. Reading a page never populated
// costs a page fault (most of a snapshot's pause, before: the demo
// guest's 128 MiB are ~32,000 pages, of which it touches a dozen), and
// populates it.
//
// A page of an anonymous mapping (a booted machine's) that the pagemap
// shows neither present nor swapped out was never written: zero. One of
// a restored machine's private mapping of its snapshot file reads as the
// file's bytes instead: it is zero only where the file has a hole. The
// error is a *MemoryFileError: the file no longer covers the memory, so
// its missing pages are neither zero nor readable.
func (m *Machine) knownZero(mem []byte) (snapshot.PageSet, error) {
	if os.Getpagesize() != snapshot.PageSize {
		return nil, nil
	}
	r := m.openPagemap()
	if r == nil {
		return nil, nil
	}
	// The guest is paused and the devices quiesced: nothing populates a
	// page between this read and Write's.
	absent, err := r.Absent(mem, snapshot.PageSize)
	if err != nil {
		if m.cfg.Verbose {
			m.logf("snapshot: %v: every page of guest memory is read", err)
		}
		return nil, nil
	}
	set := snapshot.PageSet(absent)
	if m.memFile != nil {
		err := dropFileData(set, m.memFile, m.memFileOff, int64(len(mem)))
		// The walk took a short file's end for holes: checked after it,
		// a truncation during it is caught too.
		if e := m.memFileShort(nil); e != nil {
			return nil, e
		}
		if err != nil {
			if m.cfg.Verbose {
				m.logf("snapshot: memory file %s: %v: every page of guest memory is read", m.memFile.Name(), err)
			}
			return nil, nil
		}
	}
	return set, nil
}

// dropFileData removes from set the pages whose bytes in f, a file whose
// size bytes from base are guest memory, are not all in a hole: they may
// hold data. A file system that reports no holes leaves nothing in set.
// It fails with errFileShort when the file ends before base+size: the
// pages past its end are not holes (they read as SIGBUS, not zeros).
func dropFileData(set snapshot.PageSet, f *os.File, base, size int64) error {
	fd := int(f.Fd())
	end := base + size
	for off := base; off < end; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			// No data from off on: holes to the end of the memory only
			// if the file reaches it; ENXIO past a short file's end
			// says nothing of the pages beyond.
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				return err
			}
			if st.Size < end {
				return fmt.Errorf("%w: %d bytes, memory ends at byte %d", errFileShort, st.Size, end)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if data >= end {
			return nil
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if hole <= data {
			hole = end // no progress: take the rest as data
		}
		hole = min(hole, end)
		first, last := (data-base)/snapshot.PageSize, (hole-base+snapshot.PageSize-1)/snapshot.PageSize
		for p := first; p < last; p++ {
			set[p/64] &^= 1 << (p % 64)
		}
		off = hole
	}
	return nil
}
