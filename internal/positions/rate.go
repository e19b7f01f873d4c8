package positions

import (
	"math"
	"time"
)

// minRate is the drain rate (decisions per second) below which the ETA is
// unknown rather than absurdly long.
const minRate = 0.01

// rateMeter measures the drain rate from successive readings of the decided
// counter: an exponentially weighted moving average of the per-interval rate
// with time constant tau, so a sample weighs by the time it covers and the
// last few seconds dominate. Not safe for concurrent use (ticks are
// serialised).
type rateMeter struct {
	tau    time.Duration
	last   int64
	lastAt time.Time
	rate   float64
	have   bool // a reading exists
	known  bool // rate holds at least one measured interval
}

// observe records a reading and returns the current rate (0 when unknown).
func (r *rateMeter) observe(decided int64, at time.Time) float64 {
	if !r.have || decided < r.last {
		// First reading, or the counter went back (Redis lost its data):
		// start over.
		*r = rateMeter{tau: r.tau, last: decided, lastAt: at, have: true}
		return 0
	}
	dt := at.Sub(r.lastAt).Seconds()
	if dt <= 0 {
		return r.current()
	}
	inst := float64(decided-r.last) / dt
	if !r.known {
		r.rate, r.known = inst, true
	} else {
		alpha := 1 - math.Exp(-dt/r.tau.Seconds())
		r.rate += alpha * (inst - r.rate)
	}
	r.last, r.lastAt = decided, at
	return r.current()
}

func (r *rateMeter) current() float64 {
	if !r.known || r.rate < minRate {
		return 0
	}
	return r.rate
}

// eta returns the seconds until a request with ahead requests before it is
// decided at rate, or -1 when the rate is unknown.
func eta(ahead int64, rate float64) int64 {
	if ahead <= 0 {
		return 0
	}
	if rate <= 0 {
		return -1
	}
	return int64(math.Ceil(float64(ahead) / rate))
}
