package multiboot

import "fmt"

// aoutHeaderLen is the length of a header with the a.out kludge fields.
const aoutHeaderLen = 32

// parseAOut lays the image out from the header's address fields (flag 16):
// the file bytes from the one that lands at load_addr up to load_end_addr
// (or the end of the file when 0) are loaded, then zeroed up to
// bss_end_addr (none when 0), and entry_addr is physical.
func parseAOut(h Header, hdrOff, size uint64) (*image, error) {
	if err := inFile(hdrOff, aoutHeaderLen, size, "multiboot header with a.out kludge fields"); err != nil {
		return nil, err
	}
	if h.LoadAddr > h.HeaderAddr {
		return nil, fmt.Errorf("%w: load_addr %#x above header_addr %#x", ErrBadAOut, h.LoadAddr, h.HeaderAddr)
	}
	delta := uint64(h.HeaderAddr - h.LoadAddr)
	if delta > hdrOff {
		return nil, fmt.Errorf("%w: header_addr %#x - load_addr %#x = %#x, but the header is at file offset %#x: load_addr would be before the file's start",
			ErrBadAOut, h.HeaderAddr, h.LoadAddr, delta, hdrOff)
	}
	fileOff := hdrOff - delta
	load := uint64(h.LoadAddr)
	loadEnd := load + (size - fileOff)
	if h.LoadEndAddr != 0 {
		if h.LoadEndAddr < h.LoadAddr {
			return nil, fmt.Errorf("%w: load_end_addr %#x below load_addr %#x", ErrBadAOut, h.LoadEndAddr, h.LoadAddr)
		}
		loadEnd = uint64(h.LoadEndAddr)
	}
	if err := inFile(fileOff, loadEnd-load, size, "a.out image (load_addr to load_end_addr)"); err != nil {
		return nil, err
	}
	bssEnd := loadEnd
	if h.BSSEndAddr != 0 {
		if uint64(h.BSSEndAddr) < loadEnd {
			return nil, fmt.Errorf("%w: bss_end_addr %#x below the end of the loaded image %#x", ErrBadAOut, h.BSSEndAddr, loadEnd)
		}
		bssEnd = uint64(h.BSSEndAddr)
	}
	if bssEnd == load {
		return nil, fmt.Errorf("%w: nothing to load: load_addr %#x, load_end_addr %#x, bss_end_addr %#x", ErrBadAOut, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr)
	}
	if uint64(h.EntryAddr) < load || uint64(h.EntryAddr) >= bssEnd {
		return nil, fmt.Errorf("%w: entry_addr %#x outside the image [%#x, %#x)", ErrBadAOut, h.EntryAddr, load, bssEnd)
	}
	return &image{
		format: "aout-kludge",
		segs: []segment{{
			Name: "a.out image", FileOff: fileOff, FileSize: loadEnd - load,
			Addr: load, MemSize: bssEnd - load,
		}},
		entry: h.EntryAddr,
	}, nil
}
