package kstrip

// maxDrivers and maxAttrs bound the walks of cfdriver_list_initial and of
// a driver's cd_attrs; GENERIC has about 500 drivers with a few attributes.
// maxProvided bounds the (driver, attribute) pairs of the whole table:
// drivers may share one cd_attrs array, so without it a small file could
// claim millions.
const (
	maxDrivers  = 1 << 16
	maxAttrs    = 256
	maxProvided = 1 << 14
)

// readDrivers reads cfdriver_list_initial, the NULL-terminated array of
// pointers to struct cfdriver that config(1) writes next to cfdata, and
// returns which drivers provide each interface attribute (cd_attrs, a
// NULL-terminated array of pointers to struct cfiattrdata, whose first
// field is the name). In struct cfdriver, cd_name follows four pointers
// (cd_list, cd_attach, cd_devs) and cd_attrs follows cd_name, an enum and
// an int. The table only helps resolve parents, so a damaged one is
// ignored (nil) rather than an error.
func (k *Kernel) readDrivers(va uint64) map[string][]string {
	ptr := uint64(k.lay.ptr)
	nameOff, attrsOff := 4*ptr, 5*ptr+8
	out := map[string][]string{}
	provided := 0
	list, ok := k.pointers(va, maxDrivers)
	if !ok {
		return nil
	}
	for _, cd := range list {
		off, end, err := k.amap.offset(cd)
		if err != nil || end-off < attrsOff+ptr {
			return nil
		}
		raw := k.image[off : off+attrsOff+ptr]
		name, err := k.str(k.ptrAt(raw, int(nameOff)))
		if err != nil {
			return nil
		}
		attrs := k.ptrAt(raw, int(attrsOff))
		if attrs == 0 {
			continue
		}
		ias, ok := k.pointers(attrs, maxAttrs)
		if provided += len(ias); !ok || provided > maxProvided {
			return nil
		}
		for _, ia := range ias {
			off, end, err := k.amap.offset(ia)
			if err != nil || end-off < ptr {
				return nil
			}
			attr, err := k.str(k.ptrAt(k.image[off:off+ptr], 0))
			if err != nil {
				return nil
			}
			out[attr] = append(out[attr], name)
		}
	}
	return out
}

// pointers reads the non-null pointers of the NULL-terminated array at va.
func (k *Kernel) pointers(va uint64, max int) ([]uint64, bool) {
	off, end, err := k.amap.offset(va)
	if err != nil {
		return nil, false
	}
	ptr := uint64(k.lay.ptr)
	var out []uint64
	for ; end-off >= ptr && len(out) < max; off += ptr {
		p := k.ptrAt(k.image[off:off+ptr], 0)
		if p == 0 {
			return out, true
		}
		out = append(out, p)
	}
	return nil, false
}

// Providers returns the drivers that provide interface attribute iattr,
// and false when the kernel has no readable driver table
// (cfdriver_list_initial) to tell.
func (k *Kernel) Providers(iattr string) ([]string, bool) {
	if k.providers == nil {
		return nil, false
	}
	return k.providers[iattr], true
}
