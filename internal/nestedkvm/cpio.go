package nestedkvm

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// cpioWriter writes a "newc" cpio archive, the format the Linux kernel
// unpacks an initramfs from (Documentation/driver-api/early-userspace/
// buffer-format.rst): per entry a 110-byte ASCII header of hex fields, the
// NUL-terminated name, the data, each padded to 4 bytes, and a final
// "TRAILER!!!" entry.
type cpioWriter struct {
	w     io.Writer
	ino   uint32
	n     int64 // bytes written, for padding
	names map[string]bool
	err   error
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, names: map[string]bool{}}
}

// Unix file type bits of the header's mode field.
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioLink = 0o120000
	cpioChr  = 0o020000
)

// entry writes one member; name is relative to the archive's root, without
// a leading slash. The first error sticks: later calls do nothing.
func (c *cpioWriter) entry(name string, typ uint32, perm fs.FileMode, rdevMajor, rdevMinor uint32, data []byte) {
	if c.err != nil {
		return
	}
	if name != "TRAILER!!!" {
		if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") {
			c.err = fmt.Errorf("cpio: bad member name %q", name)
			return
		}
		if c.names[name] {
			c.err = fmt.Errorf("cpio: member %q given twice", name)
			return
		}
		c.names[name] = true
	}
	if uint64(len(data)) > 0xffffffff {
		c.err = fmt.Errorf("cpio: member %q: %d bytes is more than newc's 32-bit size field holds", name, len(data))
		return
	}
	nlink := uint32(1)
	if typ == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, typ|uint32(perm.Perm()), 0, 0, nlink, 0, len(data),
		0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = fmt.Errorf("cpio: %w", err)
	}
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// Dir, File, Symlink and CharDev add one member each.
func (c *cpioWriter) Dir(name string) { c.entry(name, cpioDir, 0o755, 0, 0, nil) }

func (c *cpioWriter) File(name string, perm fs.FileMode, data []byte) {
	c.entry(name, cpioReg, perm, 0, 0, data)
}

func (c *cpioWriter) Symlink(name, target string) {
	c.entry(name, cpioLink, 0o777, 0, 0, []byte(target))
}

func (c *cpioWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) {
	c.entry(name, cpioChr, perm, major, minor, nil)
}

// Close writes the trailer and returns the first error of the archive.
func (c *cpioWriter) Close() error {
	c.entry("TRAILER!!!", 0, 0, 0, 0, nil)
	return c.err
}
