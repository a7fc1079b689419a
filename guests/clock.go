package guests

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// PITHz is the 8254's input clock, which the counter guest's "clock" word
// measures the TSC against.
const PITHz = 1193182

// CounterClock is what the counter guest prints with its "clock" word.
type CounterClock struct {
	// TSCPerPIT is the TSC ticks counted over 65535 PIT ticks (~55 ms),
	// averaged over the guest's calib=k rounds.
	TSCPerPIT uint64
	// Before and After are the TSC just before and just after the guest's
	// write to the boot-timer port (where a snapshot is taken).
	Before, After uint64
	// RTC is the CMOS clock read after that write, in UTC.
	RTC time.Time
}

// The clock lines' patterns are compiled on first use, not at package
// init: smolvmm links this package for its demo guest, and every VM start
// would otherwise pay for (and keep resident) ~22 KB of compiled regexps
// that only tests use.
var (
	tscRateRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`counter: tsc ([0-9a-f]+) over (\d+)\*65535 pit ticks\r?\n`)
	})
	tscRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`counter: tsc before ([0-9a-f]+) after ([0-9a-f]+)\r?\n`)
	})
	rtcRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`counter: rtc (\d\d-\d\d-\d\d \d\d:\d\d:\d\d)\r?\n`)
	})
)

// ParseCounterClock reads the counter guest's clock lines from out, and
// its TSC rate line from rateOut (a restored guest printed that one before
// its snapshot: pass the snapshotted run's output).
func ParseCounterClock(rateOut, out string) (CounterClock, error) {
	var c CounterClock
	m := tscRateRE().FindStringSubmatch(rateOut)
	if m == nil {
		return c, fmt.Errorf("counter guest: no TSC rate line in %.200q", rateOut)
	}
	total, _ := strconv.ParseUint(m[1], 16, 64)
	rounds, _ := strconv.ParseUint(m[2], 10, 32)
	if rounds > 0 {
		c.TSCPerPIT = total / rounds
	}
	if c.TSCPerPIT == 0 {
		return c, fmt.Errorf("counter guest: the TSC did not move in 65535 PIT ticks")
	}
	if m = tscRE().FindStringSubmatch(out); m == nil {
		return c, fmt.Errorf("counter guest: no TSC line in %.300q", out)
	}
	c.Before, _ = strconv.ParseUint(m[1], 16, 64)
	c.After, _ = strconv.ParseUint(m[2], 16, 64)
	if m = rtcRE().FindStringSubmatch(out); m == nil {
		return c, fmt.Errorf("counter guest: no RTC line in %.300q", out)
	}
	rtc, err := time.Parse("06-01-02 15:04:05", m[1])
	if err != nil {
		return c, fmt.Errorf("counter guest: the RTC reads %q: %w", m[1], err)
	}
	c.RTC = rtc
	return c, nil
}

// TSCDuration converts TSC ticks to time at the rate the guest measured.
func (c CounterClock) TSCDuration(ticks uint64) time.Duration {
	return time.Duration(float64(ticks) / float64(c.TSCPerPIT) * 65535 / PITHz * float64(time.Second))
}

// Across is the TSC time from Before to After, negative when the TSC ran
// backwards.
func (c CounterClock) Across() time.Duration {
	if c.After < c.Before {
		return -c.TSCDuration(c.Before - c.After)
	}
	return c.TSCDuration(c.After - c.Before)
}
