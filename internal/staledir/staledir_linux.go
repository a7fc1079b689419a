package staledir

import "golang.org/x/sys/unix"

// Magic numbers of statfs(2)'s f_type.
const (
	nfsMagic  = 0x6969
	cifsMagic = 0xFF534D42
	smb2Magic = 0xFE534D42
	smbMagic  = 0x517B
	fuseMagic = 0x65735546
)

// statfs returns the f_type of the file system dir is on; tests replace
// it to be on a network file system. The type is read as 32 bits, the
// width of every magic number and of f_type on 32-bit hosts.
var statfs = func(dir string) (uint32, error) {
	var st unix.Statfs_t
	err := unix.Statfs(dir, &st)
	return uint32(st.Type), err
}

// networkFS is NetworkFS, told by the file system's magic number.
func networkFS(dir string) bool {
	fsType, err := statfs(dir)
	if err != nil {
		return true
	}
	switch fsType {
	case nfsMagic, cifsMagic, smb2Magic, smbMagic, fuseMagic:
		return true
	}
	return false
}
