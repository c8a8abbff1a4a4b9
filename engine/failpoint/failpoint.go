// Package failpoint kills the process at a named point of the engine's
// work, for the crash tests: BLOCKEXEC_FAILPOINT=name:N sends SIGKILL to
// the process the N-th time the point is reached (N from 1). Unset, a
// point costs one atomic load.
//
// Points: before-place (a child's intent is checkpointed, the order not
// sent), after-place (the venue answered, nothing recorded yet),
// mid-fill (between two fills of one child's record).
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Env is the variable that arms a point.
const Env = "BLOCKEXEC_FAILPOINT"

var (
	once  sync.Once
	armed atomic.Bool
	name  string
	at    int64
	hits  atomic.Int64
)

func load() {
	v := os.Getenv(Env)
	n, count, ok := strings.Cut(v, ":")
	if !ok {
		return
	}
	c, err := strconv.ParseInt(count, 10, 64)
	if err != nil || c < 1 {
		return
	}
	name, at = n, c
	armed.Store(true)
}

// Hit marks the point reached, and kills the process if it is the armed
// point's N-th time.
func Hit(point string) {
	once.Do(load)
	if !armed.Load() || point != name {
		return
	}
	if hits.Add(1) == at {
		if self, err := os.FindProcess(os.Getpid()); err == nil {
			_ = self.Kill() // SIGKILL: no deferred call, no flush runs
		}
		select {} // the signal is on its way
	}
}
