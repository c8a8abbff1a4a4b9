package risk

import "sync"

// KillSwitch stops new child orders, for every parent (global) or for one.
// Safe for concurrent use.
type KillSwitch struct {
	mu      sync.RWMutex
	global  bool
	parents map[string]bool
}

// NewKillSwitch returns a switch that is off, or on globally when global.
func NewKillSwitch(global bool) *KillSwitch {
	return &KillSwitch{global: global, parents: map[string]bool{}}
}

// SetGlobal turns the global switch on or off.
func (k *KillSwitch) SetGlobal(on bool) {
	k.mu.Lock()
	k.global = on
	k.mu.Unlock()
}

// SetParent turns the switch for one parent on or off.
func (k *KillSwitch) SetParent(id string, on bool) {
	k.mu.Lock()
	if on {
		k.parents[id] = true
	} else {
		delete(k.parents, id)
	}
	k.mu.Unlock()
}

// Killed reports whether parent id may not trade, and the scope that says so
// ("global" or "parent").
func (k *KillSwitch) Killed(id string) (scope string, killed bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.global {
		return "global", true
	}
	if k.parents[id] {
		return "parent", true
	}
	return "", false
}
