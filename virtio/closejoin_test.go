package virtio_test

import "testing"

// TestCloseJoinsWorker: Close returns, and closes the device model, only
// once the worker goroutine has returned, whether it was idle or in a
// Process when Close began. Without the wait every other test passed:
// their goroutine checks give a goroutine seconds to go.
func TestCloseJoinsWorker(t *testing.T) {
	for _, tc := range []struct {
		name string
		busy bool // the worker is in Process when Close begins
	}{
		{"idle worker", false},
		{"worker in Process", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The worker, woken by Close, returns within moments of it:
			// rounds make a Close that does not wait fail every time.
			for range 20 {
				dev := newFakeDev()
				dev.sizes = []uint16{16}
				dev.entered = make(chan struct{}, 4)
				dev.hold = make(chan struct{})
				r := newRig(t, dev)
				dev.pd.Store(r.pd)
				if _, err := r.drv.Attach(0, r.pfns); err != nil {
					t.Fatal(err)
				}
				<-dev.entered // DRIVER_OK kicked the worker
				closed := make(chan struct{})
				if tc.busy {
					go func() { r.pd.Close(); close(closed) }()
					close(dev.hold)
				} else {
					close(dev.hold)
					r.pd.Quiesce()() // the worker has served and waits
					go func() { r.pd.Close(); close(closed) }()
				}
				<-closed
				if !r.pd.WorkerExited() {
					t.Fatal("Close returned before the worker goroutine did")
				}
				if !dev.closed.Load() || !dev.workerGone.Load() {
					t.Fatalf("device model closed %v, worker gone by then %v; want both", dev.closed.Load(), dev.workerGone.Load())
				}
			}
		})
	}
}
