package nestedkvm

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The guest side of the rig: /init, and the shell functions a job's script
// runs with. Every line the rig parses starts with marker; the guest's
// serial console runs with -onlcr, so these lines end in "\n" alone and a
// step's output reaches the host byte for byte as the command wrote it.
const marker = "@@nestedkvm:"

// initScript is /init. It stops (poweroff -f, which ends QEMU) on every
// path; a failure before the job is reported with an error marker.
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
stty -onlcr 2>/dev/null
up() { read -r u _ </proc/uptime; echo "$u"; }
fail() { echo "@@nestedkvm:error $*"; poweroff -f; }
# A line of its own: the firmware's and the kernel's escape sequences precede it.
echo
echo "@@nestedkvm:init uptime=$(up)"
for m in /lib/modules/nestedkvm/*.ko; do
	insmod "$m" || fail "insmod $m failed"
done
[ -c /dev/kvm ] || fail "no /dev/kvm after loading the kvm modules"
echo "@@nestedkvm:kvm uptime=$(up)"
cd /root
sh /job.sh
echo "@@nestedkvm:exit status=$? uptime=$(up)"
poweroff -f
`

// stepFunctions come first in /job.sh. step NAME CMD [ARG...] runs CMD
// with stdin from /dev/null (smolvmm then sees no terminal and leaves the
// serial line alone) and its stderr in a file, and frames its output:
//
//	@@nestedkvm:begin name=NAME
//	<stdout, as written>
//	@@nestedkvm:end status=N start=UPTIME end=UPTIME name=NAME
//	<stderr, as written>
//	@@nestedkvm:stderr-end name=NAME
//
// where a newline the command did not write precedes each of the last two
// markers. step returns CMD's status.
const stepFunctions = `step() {
	_nk_name=$1
	shift
	read -r _nk_t0 _ </proc/uptime
	echo "@@nestedkvm:begin name=$_nk_name"
	"$@" </dev/null 2>"${TMPDIR:-/tmp}/nestedkvm.stderr"
	_nk_st=$?
	read -r _nk_t1 _ </proc/uptime
	echo
	echo "@@nestedkvm:end status=$_nk_st start=$_nk_t0 end=$_nk_t1 name=$_nk_name"
	cat "${TMPDIR:-/tmp}/nestedkvm.stderr"
	echo
	echo "@@nestedkvm:stderr-end name=$_nk_name"
	return $_nk_st
}
`

// File is one file a job puts in the guest's root file system.
type File struct {
	Path   string      // absolute path in the guest, e.g. /root/kernel
	Source string      // host file to copy, or
	Data   []byte      // the content itself, when Source is ""
	Mode   fs.FileMode // permissions; 0 means 0755 (the rig's files are mostly programs and kernels)
}

// baseArchive is the part of the initramfs that every run shares:
// busybox, the modules, smolvmm and /init.
func baseArchive(ing Ingredients, smolvmm []byte) ([]byte, error) {
	var buf bytes.Buffer
	c := newCPIO(&buf)
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "root", "lib", "lib/modules", "lib/modules/nestedkvm"} {
		c.Dir(d)
	}
	// The kernel opens /dev/console for init before /init mounts devtmpfs.
	c.CharDev("dev/console", 0o600, 5, 1)
	bb, err := os.ReadFile(ing.Busybox)
	if err != nil {
		return nil, err
	}
	c.File("bin/busybox", 0o755, bb)
	c.Symlink("bin/sh", "busybox")
	for i, m := range ing.Modules {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, err
		}
		// The number keeps /init's glob in load order.
		c.File(fmt.Sprintf("lib/modules/nestedkvm/%02d-%s", i, filepath.Base(m)), 0o644, data)
	}
	c.File("bin/smolvmm", 0o755, smolvmm)
	c.File("init", 0o755, []byte(initScript))
	if err := c.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// jobArchive holds a job's script and files. The kernel unpacks it over
// the base archive (an initramfs may be several archives back to back), so
// a job's file replaces a base file of the same path.
func jobArchive(files []File, script string) ([]byte, error) {
	var buf bytes.Buffer
	c := newCPIO(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if !path.IsAbs(f.Path) || p == "/" {
			return nil, fmt.Errorf("file %q: the guest path must be absolute", f.Path)
		}
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, fmt.Errorf("file %s: %w", f.Path, err)
			}
		}
		// Parents first: the kernel's unpacker creates no directories on its own.
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if !dirs[d] {
				dirs[d] = true
				c.Dir(d)
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		c.File(strings.TrimPrefix(p, "/"), mode, data)
	}
	c.File("job.sh", 0o755, []byte(stepFunctions+script+"\n"))
	if err := c.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
