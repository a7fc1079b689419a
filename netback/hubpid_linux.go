package netback

import "syscall"

// peerCred is the PID and user ID of the process that connected Unix
// socket fd (or that it connected to), as the kernel recorded them then.
func peerCred(fd int) (pid, uid int, err error) {
	cred, err := syscall.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil {
		return 0, -1, err
	}
	return int(cred.Pid), int(cred.Uid), nil
}
