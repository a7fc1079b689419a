//go:build !linux

package netback

import "errors"

// peerCred is not implemented here: SO_PEERCRED is Linux's.
func peerCred(int) (pid, uid int, err error) {
	return 0, -1, errors.New("peer credentials are only read on Linux")
}
