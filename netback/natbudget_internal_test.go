package netback

import (
	"slices"
	"testing"
	"time"
)

// A guest's budget of port unreachables (tokenBucket) allows a burst,
// then natICMPPerSecond, topping up with time but never beyond the
// burst, and a clock going back takes nothing and gives nothing.
func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		at   []time.Duration // the calls, after t0
		want int             // allowed
	}{
		{"burst at once", repeat(0, 15), natICMPBurst},
		{"a second later, full again", append(repeat(0, 10), repeat(time.Second, 15)...), 2 * natICMPBurst},
		{"an hour idle tops up to the burst only", append(repeat(0, 10), repeat(time.Hour, 50)...), 2 * natICMPBurst},
		// over 5 s: 500 tokens topped up, and the burst
		{"steady at the rate", steps(time.Second/natICMPPerSecond, 501), 501},
		{"twice the rate: the rate and the burst", steps(time.Second/(2*natICMPPerSecond), 1001), 500 + natICMPBurst},
		{"clock going back", append(repeat(time.Second, 10), repeat(0, 10)...), natICMPBurst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b tokenBucket
			got := 0
			for _, d := range tt.at {
				if b.allow(t0.Add(d), natICMPPerSecond, natICMPBurst) {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("allowed %d of %d, want %d", got, len(tt.at), tt.want)
			}
		})
	}
}

// repeat is n calls at d.
func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

// steps is n calls every d from 0.
func steps(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i) * d
	}
	return s
}

// A hub's budget of NAT relays is what its descriptor limit leaves once
// a quarter (at least 1024 unless that is above half) is kept for the
// rest, at most 64 Ki; the users but root and the hub's own share three
// quarters of it, one user half.
func TestNewNATBudget(t *testing.T) {
	tests := []struct {
		nofile              uint64
		all, users, perUser int
	}{
		{16, 8, 6, 4},                              // half kept: 1024 is above half
		{1024, 512, 384, 256},                      // Go's usual soft limit
		{3000, 1976, 1482, 988},                    // 1024 kept, above a quarter
		{20000, 15000, 11250, 7500},                // a quarter kept
		{1 << 19, 64 << 10, 48 << 10, 32 << 10},    // systemd's hard limit: at most 64 Ki
		{^uint64(0), 64 << 10, 48 << 10, 32 << 10}, // RLIM_INFINITY
	}
	for _, tt := range tests {
		b := newNATBudget(tt.nofile)
		if b.all != tt.all || b.users != tt.users || b.perUser != tt.perUser {
			t.Errorf("RLIMIT_NOFILE %d: all %d, users %d, per user %d; want %d, %d, %d",
				tt.nofile, b.all, b.users, b.perUser, tt.all, tt.users, tt.perUser)
		}
	}
}

// Each bound of a budget is noted (for the log) the first time a relay
// is refused over it, not again while it stays full, and again once its
// count has fallen to half of it and it is met anew.
func TestNATBudgetNotesOnce(t *testing.T) {
	b := newNATBudget(16) // all 8, users 6, one user 4
	alice := natUser{uid: 1000}
	fill := func(u natUser, k int) {
		for range k {
			if why, _ := b.check(u); why != "" {
				t.Fatalf("uid %d refused below its bound: %s", u.uid, why)
			}
			b.add(u)
		}
	}
	fill(alice, 4)
	var notes []bool
	for range 3 {
		why, note := b.check(alice)
		if why == "" {
			t.Fatal("uid 1000's fifth relay admitted")
		}
		notes = append(notes, note)
	}
	b.remove(alice) // 3: above half, still noted
	fill(alice, 1)
	_, note := b.check(alice)
	notes = append(notes, note)
	b.remove(alice)
	b.remove(alice) // 2: half, forgotten
	fill(alice, 2)
	_, note = b.check(alice)
	notes = append(notes, note)
	if want := []bool{true, false, false, false, true}; !slices.Equal(notes, want) {
		t.Errorf("noted %v, want %v", notes, want)
	}
	if b.open != 4 || b.usersOpen != 4 || b.byUser[1000] != 4 {
		t.Errorf("counts open %d, users %d, uid 1000 %d; want 4 each", b.open, b.usersOpen, b.byUser[1000])
	}
}
