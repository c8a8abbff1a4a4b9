package engine

import (
	"time"

	"github.com/rs/zerolog"
)

// staleBook is how old a venue's book may be before the venue is treated
// as unhealthy for the slice.
const staleBook = 30 * time.Second

// maxBackoff bounds how many slice intervals a failing venue sits out.
const maxBackoff = 16

// venueHealth is a venue's recent record: after a failure (an error on
// book, tape or place, or a stale book) the venue sits out 1, 2, 4, …
// slice intervals (at most 16) before it is tried again; a success clears
// it. Its share of slices goes to the other venues meanwhile.
type venueHealth struct {
	failures  int
	downUntil time.Time
}

func (e *Engine) healthy(name string, now time.Time) bool {
	return !now.Before(e.health[name].downUntil)
}

func (e *Engine) venueFailed(name string, now time.Time, interval time.Duration, why string) {
	h := e.health[name]
	h.failures++
	n := 1 << min(h.failures-1, 4)
	h.downUntil = now.Add(time.Duration(min(n, maxBackoff)) * interval)
	e.log.WithLevel(levelFor(h.failures)).Str("venue", name).Int("failures", h.failures).
		Time("retry_at", h.downUntil).Str("reason", why).Msg("venue unhealthy; its share goes to the others")
}

func (e *Engine) venueOK(name string) {
	h := e.health[name]
	if h.failures > 0 {
		e.log.Info().Str("venue", name).Msg("venue healthy again")
	}
	h.failures, h.downUntil = 0, time.Time{}
}

// levelFor logs the first failure as a warning and repeats at debug.
func levelFor(failures int) zerolog.Level {
	if failures == 1 {
		return zerolog.WarnLevel
	}
	return zerolog.DebugLevel
}
