package virtio

// WorkerExited reports whether d's worker goroutine has returned.
func (d *PCIDevice) WorkerExited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}
