package netback

import "testing"

// A VM's queue on the hub holds its depth in short frames (a burst of
// TCP ACKs) and its bytes in long ones, never more bytes of buffers than
// hubPortBytes, whatever the frames' sizes.
func TestHubPortQueueBounds(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		queued uint64
	}{
		{"ACKs", 66, hubPortDepth},
		{"frames of a small buffer", tinyFrame, hubPortDepth},
		{"a byte longer", tinyFrame + 1, hubPortBytes / smallFrame},
		{"MTU frames", hubMaxFrame, hubPortBytes / smallFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newBoundedFrameQueue(hubPortDepth, hubPortBytes)
			f := make([]byte, tt.size)
			var most int64
			for range 2 * hubPortDepth {
				q.pushParts([][]byte{f})
				most = max(most, q.bytes.Load())
			}
			if got := q.pushed.Load(); got != tt.queued {
				t.Errorf("%d frames of %d bytes queued, want %d", got, tt.size, tt.queued)
			}
			if most > hubPortBytes {
				t.Errorf("%d bytes of buffers queued, want at most %d", most, hubPortBytes)
			}
			for range q.pushed.Load() {
				g, ok := q.tryPopFrame()
				if !ok || len(g) != tt.size {
					t.Fatalf("popped %d bytes (%v), want %d", len(g), ok, tt.size)
				}
				releaseFrame(g)
			}
			if n := q.bytes.Load(); n != 0 {
				t.Errorf("%d bytes counted queued in an empty queue", n)
			}
		})
	}
}
