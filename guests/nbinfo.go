package guests

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
)

// NBInfoLines returns the "nb: " lines the nbboot and long64 guests print
// (src/nbinfo.c) when entered with ESP esp in a guest whose physical memory
// is mem, as NetBSD's native handoff leaves it: the stack words, then each
// bootinfo record with its FNV-1a hash and decoded fields. A test compares
// them with the guest's console to prove the guest read what the loader
// wrote. It fails, naming the address, where the guest would fail or read
// outside mem.
func NBInfoLines(mem []byte, esp uint32) ([]string, error) {
	r := memReader(mem)
	sp, err := r.words(uint64(esp), 7)
	if err != nil {
		return nil, fmt.Errorf("guests: stack: %w", err)
	}
	lines := []string{
		fmt.Sprintf("nb: esp=%#x return=%#x", esp, sp[0]),
		fmt.Sprintf("nb: boothowto=%#x bootdev=%#x bootinfo=%#x esym=%#x extmem=%d basemem=%d",
			sp[1], sp[2], sp[3], sp[4], sp[5], sp[6]),
	}
	if sp[3] == 0 {
		return append(lines, "nb: no bootinfo"), nil
	}
	n, err := r.u32(uint64(sp[3]))
	if err != nil {
		return nil, fmt.Errorf("guests: bootinfo table: %w", err)
	}
	lines = append(lines, fmt.Sprintf("nb: bootinfo entries=%d", n))
	if n > 32 {
		return nil, fmt.Errorf("guests: bootinfo at %#x has %d entries, the guest takes 32", sp[3], n)
	}
	addrs, err := r.words(uint64(sp[3])+4, int(n))
	if err != nil {
		return nil, fmt.Errorf("guests: bootinfo table: %w", err)
	}
	for i, a := range addrs {
		hdr, err := r.words(uint64(a), 2)
		if err != nil {
			return nil, fmt.Errorf("guests: bootinfo record %d: %w", i, err)
		}
		l, typ := hdr[0], hdr[1]
		if l < 8 || l > 65536 {
			return nil, fmt.Errorf("guests: bootinfo record %d at %#x: length %d outside 8..65536", i, a, l)
		}
		rec, err := r.slice(uint64(a), uint64(l))
		if err != nil {
			return nil, fmt.Errorf("guests: bootinfo record %d: %w", i, err)
		}
		h := fnv.New32a()
		h.Write(rec)
		lines = append(lines, fmt.Sprintf("nb: record %d at %#x type=%d %s len=%d fnv=0x%08x",
			i, a, typ, btinfoName(typ), l, h.Sum32()))
		more, err := recordLines(r, rec, typ)
		if err != nil {
			return nil, fmt.Errorf("guests: bootinfo record %d (%s) at %#x: %w", i, btinfoName(typ), a, err)
		}
		lines = append(lines, more...)
	}
	return lines, nil
}

func btinfoName(t uint32) string {
	names := map[uint32]string{0: "bootpath", 1: "rootdevice", 3: "bootdisk", 4: "netif",
		6: "console", 7: "biosgeom", 8: "symtab", 9: "memmap", 10: "bootwedge",
		11: "modulelist", 12: "framebuffer", 13: "userconfcommands"}
	if s, ok := names[t]; ok {
		return s
	}
	return "unknown"
}

func recordLines(r memReader, rec []byte, typ uint32) ([]string, error) {
	le := binary.LittleEndian
	need := func(n int) error {
		if len(rec) < n {
			return fmt.Errorf("%d bytes, needs %d", len(rec), n)
		}
		return nil
	}
	switch typ {
	case 0:
		if err := need(88); err != nil {
			return nil, err
		}
		return []string{"nb: btinfo bootpath " + cField(rec[8:88])}, nil
	case 1:
		if err := need(24); err != nil {
			return nil, err
		}
		return []string{"nb: btinfo rootdevice " + cField(rec[8:24])}, nil
	case 6:
		if err := need(32); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("nb: btinfo console %s addr=%#x speed=%d",
			cField(rec[8:24]), le.Uint32(rec[24:]), le.Uint32(rec[28:]))}, nil
	case 8:
		if err := need(20); err != nil {
			return nil, err
		}
		ssym := le.Uint32(rec[12:])
		head, err := r.slice(uint64(ssym), 4)
		if err != nil {
			return nil, fmt.Errorf("symbols: %w", err)
		}
		return []string{fmt.Sprintf("nb: btinfo symtab nsym=%d ssym=%#x esym=%#x head=%x",
			le.Uint32(rec[8:]), ssym, le.Uint32(rec[16:]), head)}, nil
	case 9:
		if err := need(12); err != nil {
			return nil, err
		}
		num := le.Uint32(rec[8:])
		if num > 64 || 12+uint64(num)*20 > uint64(len(rec)) {
			return nil, fmt.Errorf("memmap num=%d does not fit in %d bytes", num, len(rec))
		}
		lines := []string{fmt.Sprintf("nb: btinfo memmap num=%d", num)}
		for i := 0; i < int(num); i++ {
			e := rec[12+20*i:]
			lines = append(lines, fmt.Sprintf("nb: memmap addr=0x%016x size=0x%016x type=%d",
				le.Uint64(e), le.Uint64(e[8:]), le.Uint32(e[16:])))
		}
		return lines, nil
	case 11:
		if err := need(16); err != nil {
			return nil, err
		}
		num := le.Uint32(rec[8:])
		if num > 32 || 16+uint64(num)*92 > uint64(len(rec)) {
			return nil, fmt.Errorf("modulelist num=%d does not fit in %d bytes", num, len(rec))
		}
		lines := []string{fmt.Sprintf("nb: btinfo modulelist num=%d endpa=%#x", num, le.Uint32(rec[12:]))}
		for i := 0; i < int(num); i++ {
			e := rec[16+92*i:]
			base := le.Uint32(e[88:])
			head, err := r.slice(uint64(base), 4)
			if err != nil {
				return nil, fmt.Errorf("module %d: %w", i, err)
			}
			lines = append(lines, fmt.Sprintf("nb: module %s type=%d len=%d base=%#x head=%x",
				cField(e[:80]), le.Uint32(e[80:]), le.Uint32(e[84:]), base, head))
		}
		return lines, nil
	}
	return nil, nil
}

// cField quotes a NUL-terminated fixed-size field as put_field does.
func cField(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		if c == 0 {
			break
		}
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			s.WriteByte(c)
		} else {
			fmt.Fprintf(&s, "\\x%02x", c)
		}
	}
	s.WriteByte('"')
	return s.String()
}

type memReader []byte

func (m memReader) slice(addr, n uint64) ([]byte, error) {
	if addr > uint64(len(m)) || n > uint64(len(m))-addr {
		return nil, fmt.Errorf("%d bytes at %#x outside %d bytes of memory", n, addr, len(m))
	}
	return m[addr : addr+n], nil
}

func (m memReader) u32(addr uint64) (uint32, error) {
	b, err := m.slice(addr, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (m memReader) words(addr uint64, n int) ([]uint32, error) {
	b, err := m.slice(addr, 4*uint64(n))
	if err != nil {
		return nil, err
	}
	w := make([]uint32, n)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w, nil
}
