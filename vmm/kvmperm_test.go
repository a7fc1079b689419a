package vmm

import (
	"encoding/binary"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKVMPermissionHint: the advice for a user refused /dev/kvm names the
// device's group only when that group may read and write it and is not
// root's; it named "the kvm group" whatever the device was, so that with
// /dev/kvm crw------- root root, and no kvm group at all, it told the user
// to join a group that does not exist and would not help. A user already
// in the group is not told to join it: a login that began before is told
// to log in again, one that has the group (refused all the same), or in a
// group that may not use the device, is given the ACL advice.
func TestKVMPermissionHint(t *testing.T) {
	const access = "give your user read and write access to /dev/kvm (sudo setfacl --modify u:$USER:rw /dev/kvm"
	tests := []struct {
		name string
		a    deviceAccess
		want string // the hint holds it
		join bool   // the hint says to join the group
	}{
		{"group kvm rw", deviceAccess{group: "kvm", groupRW: true}, "add your user to the kvm group (sudo usermod -aG kvm $USER, then log in again)", true},
		{"another group rw", deviceAccess{group: "hypervisor", groupRW: true}, "add your user to the hypervisor group (sudo usermod -aG hypervisor $USER", true},
		{"group may not", deviceAccess{group: "kvm"}, access, false},
		{"group rw, root's group", deviceAccess{group: "root", groupRW: true}, access, false},
		{"group unknown", deviceAccess{groupRW: true}, access, false},
		{"listed, login before", deviceAccess{group: "kvm", groupRW: true, listed: true}, "your user is in the kvm group, but this login started before it joined: log in again (or run newgrp kvm)", false},
		{"has the group, refused", deviceAccess{group: "kvm", groupRW: true, listed: true, active: true}, "this process has the kvm group, which may read and write /dev/kvm, and was refused all the same: " + access, false},
		{"has it by newgrp only", deviceAccess{group: "kvm", groupRW: true, active: true}, "this process has the kvm group", false},
		// An ACL whose group:: entry is --- under a mask rw-: ls -l
		// shows crw-rw----+, yet the group has no access.
		{"in a group that may not", deviceAccess{group: "kvm", listed: true, active: true}, "the kvm group, which your user is in, may not read and write /dev/kvm: " + access, false},
		{"listed in a group that may not", deviceAccess{group: "kvm", listed: true}, "the kvm group, which your user is in, may not read and write /dev/kvm: " + access, false},
		{"in root's group", deviceAccess{group: "root", listed: true, active: true}, access, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kvmPermissionHint(tt.a)
			if !strings.Contains(got, tt.want) || !strings.HasSuffix(got, "or run as root") {
				t.Errorf("hint %q, want it to hold %q and end \"or run as root\"", got, tt.want)
			}
			if joins := strings.Contains(got, "usermod"); joins != tt.join {
				t.Errorf("hint %q: says to join the group: %v, want %v", got, joins, tt.join)
			}
		})
	}
}

// aclBytes is the attribute of an access ACL (aclXattr) of entries, each
// tag, permission and id.
func aclBytes(version uint32, entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, version)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// The entries of getfacl's user::rw- user:nobody:rw- group::--- mask::rw-
// other::---, as setfacl -m u:nobody:rw leaves them on a crw------- device.
var aclNobody = [][3]uint32{{0x01, 6, 0xffffffff}, {0x02, 6, 65534}, {0x04, 0, 0xffffffff}, {0x10, 6, 0xffffffff}, {0x20, 0, 0xffffffff}}

// parseACL reads the entries of an access ACL's attribute, and refuses
// one whose header or entries are cut short or of another version,
// naming the offset.
func TestParseACL(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want []aclEntry
		err  string
	}{
		{"setfacl's", aclBytes(2, aclNobody...), []aclEntry{{1, 6, 0xffffffff}, {2, 6, 65534}, {4, 0, 0xffffffff}, {0x10, 6, 0xffffffff}, {0x20, 0, 0xffffffff}}, ""},
		{"no entries", aclBytes(2), []aclEntry{}, ""},
		{"empty", nil, nil, "0 bytes, shorter than the 4-byte header"},
		{"short header", []byte{2, 0}, nil, "2 bytes, shorter than the 4-byte header"},
		{"version 1", aclBytes(1, aclNobody...), nil, "version 1 at offset 0, not 2"},
		{"cut entry", aclBytes(2, aclNobody...)[:4+8+5], nil, "17 bytes: the last 5, at offset 12, are not a whole 8-byte entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseACL(tt.b)
			switch {
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Errorf("error %v, want %q", err, tt.err)
			case tt.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.err == "" && !slices.Equal(got, tt.want):
				t.Errorf("entries %v, want %v", got, tt.want)
			}
		})
	}
}

// The group's access is its ACL's group:: entry within the mask, not the
// mode's group bits, which are the mask when there is an ACL.
func TestOwnerGroupPerm(t *testing.T) {
	dev := fs.ModeDevice | fs.ModeCharDevice
	tests := []struct {
		name string
		mode fs.FileMode
		acl  [][3]uint32 // nil: no ACL
		want uint16
		err  bool
	}{
		{"no ACL, crw-rw----", dev | 0o660, nil, 6, false},
		{"no ACL, crw-r-----", dev | 0o640, nil, 4, false},
		{"no ACL, crw-------", dev | 0o600, nil, 0, false},
		{"group::--- mask::rw-, crw-rw----+", dev | 0o660, aclNobody, 0, false},
		{"group::rw- mask::r--, crw-r-----+", dev | 0o640, [][3]uint32{{0x01, 6, 0}, {0x04, 6, 0}, {0x08, 6, 36}, {0x10, 4, 0}, {0x20, 0, 0}}, 4, false},
		{"group::rw- mask::rw-, crw-rw----+", dev | 0o660, [][3]uint32{{0x01, 6, 0}, {0x02, 6, 1000}, {0x04, 6, 0}, {0x10, 6, 0}, {0x20, 0, 0}}, 6, false},
		{"no group:: entry", dev | 0o660, [][3]uint32{{0x01, 6, 0}, {0x10, 6, 0}, {0x20, 0, 0}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var acl []aclEntry
			if tt.acl != nil {
				var err error
				if acl, err = parseACL(aclBytes(2, tt.acl...)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ownerGroupPerm(tt.mode, acl)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("%o, %v; want %o, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// The advice read from a file as it is: with an ACL whose group:: entry
// is ---, whose mode shows the mask rw- for the group, joining the group
// is not advised; it was, from the mode. A file, not /dev/kvm, given to
// a group this process neither has nor is listed in.
func TestDeviceGroupACL(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another group takes root")
	}
	const gid = 65534
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	if err != nil {
		t.Skipf("no group %d: %v", gid, err)
	}
	if groups, _ := os.Getgroups(); inGroup(gid, os.Getegid(), groups) {
		t.Skipf("this process has group %d", gid)
	}
	if u, err := user.Current(); err != nil {
		t.Skip(err)
	} else if ids, err := u.GroupIds(); err != nil || slices.Contains(ids, strconv.Itoa(gid)) {
		t.Skipf("this user's groups %v (%v) hold %d", ids, err, gid)
	}
	tests := []struct {
		name string
		acl  [][3]uint32 // nil: none
		join bool
	}{
		{"crw-rw----, no ACL", nil, true},
		{"crw-rw----+, group::---", aclNobody, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kvm")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, 0, gid); err != nil {
				t.Fatal(err)
			}
			if tt.acl != nil {
				// Setting the ACL sets the mode's group bits to its mask.
				if err := unix.Setxattr(path, aclXattr, aclBytes(2, tt.acl...), 0); err != nil {
					t.Skipf("no ACL on %s: %v", path, err)
				}
			} else if err := os.Chmod(path, 0o660); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o660 {
				t.Fatalf("%s: %v, %v, want mode 0660", path, st.Mode(), err)
			}
			got := kvmPermissionHint(deviceGroup(path))
			want := "add your user to the " + g.Name + " group"
			if strings.Contains(got, want) != tt.join {
				t.Errorf("hint %q: says %q: %v, want %v", got, want, !tt.join, tt.join)
			}
		})
	}
}
