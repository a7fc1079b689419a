package imagebuilder_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"golang.org/x/sys/unix"
)

// aclEntry is one entry of a POSIX ACL: a tag (aclUserObj...), its
// permission bits (4 read, 2 write, 1 search) and, for a named user or
// group, its id.
type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// Tags of the Linux POSIX ACL xattr format.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xffffffff // ACL_UNDEFINED_ID, for an entry that names no one
)

// aclXattr encodes es, in the order the kernel wants, as the value of a
// system.posix_acl_* xattr: version 2, then 8 bytes an entry.
func aclXattr(es []aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range es {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// TestPostinstDefaultACL: a default ACL on TMPDIR was inherited by the
// staging directory and all a script made in it, and where a default
// ACL applies Linux ignores the umask: a script promised umask 022 made
// files of mode 0600 and directories of 0700 in the image under an ACL
// that grants the group and others nothing, and 0666 and 0777 under one
// that grants them all. One that also named a user left the build's
// group (a root build's scripts) without search on the staging directory
// whatever its mode said, so the scripts could not start.
func TestPostinstDefaultACL(t *testing.T) {
	const rwx, rx = 7, 5
	for _, tc := range []struct {
		name string
		acl  []aclEntry
	}{
		{"owner only", []aclEntry{{aclUserObj, rwx, aclNoID}, {aclGroupObj, 0, aclNoID}, {aclOther, 0, aclNoID}}},
		{"all", []aclEntry{{aclUserObj, rwx, aclNoID}, {aclGroupObj, rwx, aclNoID}, {aclOther, rwx, aclNoID}}},
		{"named user", []aclEntry{{aclUserObj, rwx, aclNoID}, {aclUser, rwx, 65534}, {aclGroupObj, 0, aclNoID}, {aclMask, rwx, aclNoID}, {aclOther, rx, aclNoID}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp, err := os.MkdirTemp("", "acltmp-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(tmp) })
			// As /tmp is: any user, the scripts' too, may reach it.
			if err := os.Chmod(tmp, 0o1777); err != nil {
				t.Fatal(err)
			}
			err = unix.Setxattr(tmp, "system.posix_acl_default", aclXattr(tc.acl), 0)
			if errors.Is(err, unix.EOPNOTSUPP) {
				t.Skipf("the file system of %s has no POSIX ACLs: %v", tmp, err)
			}
			if err != nil {
				t.Fatalf("setting a default ACL on %s: %v", tmp, err)
			}
			t.Setenv("TMPDIR", tmp)
			tr := baseTree(t)
			script := "set -e\nmkdir -p var/www/sub\necho page > var/www/index.html\n: > var/www/sub/empty\nmkdir var/log\n"
			svc := loadService(t, "svc", postinstService(t, map[string]string{"x.sh": script}))
			var log strings.Builder
			if err := imagebuilder.RunPostinst(context.Background(), tr, svc, &log); err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			for p, want := range map[string]uint16{
				"var":                0o755,
				"var/www":            0o755,
				"var/www/sub":        0o755,
				"var/log":            0o755,
				"var/www/index.html": 0o644,
				"var/www/sub/empty":  0o644,
			} {
				n, err := tr.Get(p)
				switch {
				case err != nil:
					t.Errorf("%s: %v", p, err)
				case n.Perm != want:
					t.Errorf("%s: mode %#o, want %#o (umask 022)", p, n.Perm, want)
				}
			}
		})
	}
}
