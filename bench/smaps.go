package bench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mapping is one entry of /proc/PID/smaps.
type Mapping struct {
	Start, End uint64 // the mapping's addresses, End excluded
	Perms      string // its permissions, as smaps gives them: "r-xp"
	// Path is the file or pseudo-name ("[heap]"); empty when anonymous.
	Path   string
	RSSKiB int64 // its resident set, KiB
	// PSSKiB is the proportional set size: each resident page divided by
	// the number of processes that map it.
	PSSKiB int64
	// AnonKiB is the resident anonymous memory: in a private file
	// mapping, the pages copied on write (smaps' Private_Dirty would also
	// count page-cache pages not yet written back to the file).
	AnonKiB int64
}

// Size is the mapping's length in bytes.
func (m Mapping) Size() uint64 { return m.End - m.Start }

// ParseSmaps reads the smaps format: a header line per mapping
// ("start-end perms offset dev inode [path]") followed by "Key: value kB"
// lines, of which only Rss, Pss and Anonymous are kept.
func ParseSmaps(r io.Reader) ([]Mapping, error) {
	var maps []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if key, ok := strings.CutSuffix(fields[0], ":"); ok {
			if len(maps) == 0 {
				return nil, fmt.Errorf("smaps line %d: %q before any mapping header", line, text)
			}
			m := &maps[len(maps)-1]
			dst := map[string]*int64{"Rss": &m.RSSKiB, "Pss": &m.PSSKiB, "Anonymous": &m.AnonKiB}[key]
			if dst != nil && len(fields) >= 2 {
				kib, err := strconv.ParseInt(fields[1], 10, 64)
				if err != nil || kib < 0 {
					return nil, fmt.Errorf("smaps line %d: %s %q: not a size in kB", line, key, fields[1])
				}
				*dst = kib
			}
			continue
		}
		m, err := parseHeader(fields)
		if err != nil {
			return nil, fmt.Errorf("smaps line %d: %q: %w", line, text, err)
		}
		maps = append(maps, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("smaps line %d: %w", line+1, err)
	}
	return maps, nil
}

func parseHeader(f []string) (Mapping, error) {
	if len(f) < 5 {
		return Mapping{}, fmt.Errorf("mapping header has %d fields, want at least 5", len(f))
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return Mapping{}, fmt.Errorf("address range %q has no '-'", f[0])
	}
	start, err := strconv.ParseUint(lo, 16, 64)
	if err != nil {
		return Mapping{}, fmt.Errorf("start address %q: %w", lo, err)
	}
	end, err := strconv.ParseUint(hi, 16, 64)
	if err != nil {
		return Mapping{}, fmt.Errorf("end address %q: %w", hi, err)
	}
	if end < start {
		return Mapping{}, fmt.Errorf("end address %#x below start %#x", end, start)
	}
	m := Mapping{Start: start, End: end, Perms: f[1]}
	if len(f) > 5 {
		m.Path = strings.Join(f[5:], " ")
	}
	return m, nil
}

// Memory is a VMM's resident memory, split into guest RAM and the rest.
type Memory struct {
	// SampledAt is the event the sample was taken at: "ready" or
	// "first-output".
	SampledAt string `json:"sampled_at"`
	// ReadyBy is, for a sample at ready, the event that made it ready
	// then (ReadyByLine...; Boot.ReadyBy): a sample at smolvmm's
	// boot-timer write is not one at QEMU's ready line.
	ReadyBy string `json:"ready_by,omitempty"`
	// Settled: the sample was taken once the process said it had done
	// what it does after its guest starts (Target.SettledFlag), some time
	// after SampledAt.
	Settled bool `json:"settled,omitempty"`
	// ExecutableMapped: the process settled without unmapping its
	// executable's set-up code (smolvmm: under a debugger, or dynamically
	// linked), whose pages are then in RSS; ExecutableMappedWhy says why,
	// when the process said.
	ExecutableMapped    bool   `json:"executable_mapped,omitempty"`
	ExecutableMappedWhy string `json:"executable_mapped_why,omitempty"`
	// RSSKiB is the process's whole resident set (sum of smaps Rss).
	RSSKiB int64 `json:"rss_kib"`
	// GuestRAMKiB is the size of the guest RAM mapping and GuestRSSKiB
	// the part of it that is resident. For a restored VM that is the
	// pages of the snapshot mapped since the restore, more than the guest
	// (or the VMM) touched: a read fault on a private file mapping maps
	// the page cache's pages around it too (fault-around, or the whole of
	// a large folio: 2 MiB for one byte read, on Linux 6.18 with ext4),
	// and madvise(MADV_RANDOM) does not stop it there; GuestWrittenKiB is
	// exact.
	GuestRAMKiB int64 `json:"guest_ram_kib"`
	GuestRSSKiB int64 `json:"guest_rss_kib"`
	// GuestWrittenKiB is the part of GuestRSSKiB written since the mapping
	// was made (smaps' Anonymous): for a restored VM, the pages copied
	// from the snapshot on write, the rest being the page cache's, shared
	// with every other VM restored from the file.
	GuestWrittenKiB int64 `json:"guest_written_kib"`
	// GuestFile is the file whose private mapping holds the guest RAM (a
	// restore's snapshot, as the kernel names it); empty when the guest
	// RAM is anonymous memory (a boot).
	GuestFile string `json:"guest_file,omitempty"`
	// GuestMappingKiB is the size of the mapping that holds the guest RAM:
	// GuestRAMKiB, or a little more when merged with a neighbour.
	GuestMappingKiB int64 `json:"guest_mapping_kib"`
	// OverheadKiB is RSSKiB - GuestRSSKiB: the VMM's own memory.
	OverheadKiB int64 `json:"overhead_kib"`
	// FileRSSKiB is the part of the overhead in file mappings (the VMM's
	// executable and shared libraries), the rest being anonymous memory
	// (heap, stacks, data and BSS).
	FileRSSKiB int64 `json:"file_rss_kib"`
}

// mergeSlack is how much larger than the guest RAM its mapping may be: the
// kernel merges the RAM mapping with an adjacent anonymous mapping of the
// same permissions (smolvmm's often absorbs a 132 KiB malloc arena).
const mergeSlack = 1 << 20

// Overhead splits maps into the guest RAM mapping and everything else. The
// guest RAM is the anonymous read-write mapping of exactly guestBytes
// (smolvmm and QEMU both map RAM that way) or, when the kernel merged it
// with a neighbour, the smallest one less than 1 MiB larger; the
// neighbour's resident pages then count as guest memory (GuestMappingKiB
// shows the merge).
func Overhead(maps []Mapping, guestBytes uint64) (Memory, error) {
	return overhead(maps, guestBytes, "", 0)
}

// OverheadAt is Overhead for a guest RAM known to start at address addr
// (as the VMM said it: Target.SettledFlag): the anonymous read-write
// mapping that holds [addr, addr+guestBytes) is the guest RAM, whatever
// else has its size.
func OverheadAt(maps []Mapping, guestBytes, addr uint64) (Memory, error) {
	if addr == 0 {
		return Memory{}, fmt.Errorf("OverheadAt: no guest RAM address")
	}
	return overhead(maps, guestBytes, "", addr)
}

// RestoredOverhead is Overhead for a VM restored from a snapshot: its guest
// RAM is the private (copy-on-write) read-write mapping of exactly
// guestBytes of file, the snapshot, which must be an absolute path with
// its symbolic links resolved, as the kernel names mapped files.
func RestoredOverhead(maps []Mapping, guestBytes uint64, file string) (Memory, error) {
	if file == "" {
		return Memory{}, fmt.Errorf("RestoredOverhead: no snapshot file named")
	}
	return overhead(maps, guestBytes, file, 0)
}

// overhead is Overhead, OverheadAt when addr is not 0, or RestoredOverhead
// when file is set.
func overhead(maps []Mapping, guestBytes uint64, file string, addr uint64) (Memory, error) {
	var mem Memory
	for _, m := range maps {
		mem.RSSKiB += m.RSSKiB
		if strings.HasPrefix(m.Path, "/") {
			mem.FileRSSKiB += m.RSSKiB
		}
	}
	guest, err := findGuest(maps, guestBytes, file, addr)
	if err != nil {
		return Memory{}, err
	}
	g := maps[guest]
	mem.GuestRAMKiB = int64(guestBytes >> 10)
	mem.GuestMappingKiB = int64(g.Size() >> 10)
	mem.GuestRSSKiB = g.RSSKiB
	mem.GuestWrittenKiB = min(g.AnonKiB, g.RSSKiB)
	mem.GuestFile = file
	mem.OverheadKiB = mem.RSSKiB - mem.GuestRSSKiB
	if file != "" {
		mem.FileRSSKiB -= g.RSSKiB // the guest RAM, not the VMM's files
	}
	return mem, nil
}

// findGuest returns the index of the guest RAM mapping in maps, as
// Overhead describes it, as OverheadAt does when addr is not 0, or as
// RestoredOverhead does when file is set.
func findGuest(maps []Mapping, guestBytes uint64, file string, addr uint64) (int, error) {
	if file != "" {
		return findGuestFile(maps, guestBytes, file)
	}
	if addr != 0 {
		return findGuestAt(maps, guestBytes, addr)
	}
	guest := -1
	for i, m := range maps {
		if m.Path != "" || !strings.HasPrefix(m.Perms, "rw") || m.Size() < guestBytes || m.Size() >= guestBytes+mergeSlack {
			continue
		}
		switch {
		case guest < 0 || m.Size() < maps[guest].Size():
			guest = i
		case m.Size() == maps[guest].Size() && m.Size() == guestBytes:
			return -1, fmt.Errorf("two anonymous mappings of %d bytes (%#x and %#x): cannot tell which is the guest RAM", guestBytes, maps[guest].Start, m.Start)
		}
	}
	if guest < 0 {
		return -1, fmt.Errorf("no anonymous read-write mapping of %d bytes (the guest RAM) among %d mappings", guestBytes, len(maps))
	}
	return guest, nil
}

// findGuestAt returns the index of the anonymous read-write mapping that
// holds [addr, addr+guestBytes): the guest RAM, merged or not with a
// neighbour.
func findGuestAt(maps []Mapping, guestBytes, addr uint64) (int, error) {
	for i, m := range maps {
		if addr < m.Start || addr >= m.End {
			continue
		}
		if m.Path != "" || !strings.HasPrefix(m.Perms, "rw") || guestBytes > m.End-addr {
			return -1, fmt.Errorf("the guest RAM at %#x (%d bytes) is not an anonymous read-write mapping of it: %#x-%#x %s %s", addr, guestBytes, m.Start, m.End, m.Perms, m.Path)
		}
		return i, nil
	}
	return -1, fmt.Errorf("no mapping holds the guest RAM at %#x among %d mappings", addr, len(maps))
}

// findGuestFile returns the index of the private read-write mapping of
// exactly guestBytes of file (the kernel appends " (deleted)" to a file
// removed since it was mapped).
func findGuestFile(maps []Mapping, guestBytes uint64, file string) (int, error) {
	for i, m := range maps {
		path := strings.TrimSuffix(m.Path, " (deleted)")
		if path == file && m.Perms == "rw-p" && m.Size() == guestBytes {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no private read-write mapping of %d bytes of %s (the restored guest RAM) among %d mappings", guestBytes, file, len(maps))
}

// ReadMemory reads /proc/PID/smaps and computes the overhead.
func ReadMemory(pid int, guestBytes uint64) (Memory, error) {
	return readMemory(pid, guestBytes, "", 0)
}

// ReadRestoredMemory is ReadMemory for a VM restored from the snapshot
// file (as RestoredOverhead).
func ReadRestoredMemory(pid int, guestBytes uint64, file string) (Memory, error) {
	if file == "" {
		return Memory{}, fmt.Errorf("ReadRestoredMemory: no snapshot file named")
	}
	return readMemory(pid, guestBytes, file, 0)
}

// readMemory is ReadMemory, or ReadRestoredMemory when file is set; addr,
// when not 0 (and no file), is where the guest RAM is mapped (OverheadAt).
func readMemory(pid int, guestBytes uint64, file string, addr uint64) (Memory, error) {
	maps, err := readSmaps(pid)
	if err != nil {
		return Memory{}, err
	}
	mem, err := overhead(maps, guestBytes, file, addr)
	if err != nil {
		return Memory{}, fmt.Errorf("/proc/%d/smaps: %w", pid, err)
	}
	return mem, nil
}

// readSmaps reads and parses /proc/PID/smaps. A process gone, reaped or a
// zombie (whose smaps is empty), is ErrGone.
func readSmaps(pid int) ([]Mapping, error) {
	f, err := openProc(pid, "smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	maps, err := ParseSmaps(f)
	if err != nil {
		return nil, fmt.Errorf("/proc/%d/smaps: %w", pid, gone(err))
	}
	if len(maps) == 0 {
		return nil, fmt.Errorf("/proc/%d/smaps is empty: %w", pid, ErrGone)
	}
	return maps, nil
}
