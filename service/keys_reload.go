package service

import (
	"crypto/subtle"
	"os"
	"slices"
	"time"

	"github.com/rs/zerolog"
)

// checkInterval is how often a request may look at the keys file for a
// change.
const checkInterval = time.Second

// SetLog sets where reloads of the keys file are logged (key ids and
// counts, never a secret); the default is nowhere.
func (k *Keyring) SetLog(log zerolog.Logger) {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	k.log = log
}

// Reload reads the keys file again, as LoadKeys does, and puts its keys in
// force at once, so keys rotate without a restart. A key that stays with
// the same secret keeps its rate limiter (at the file's rate now); one
// whose secret changed starts afresh. Nonces already seen stay refused
// for their window whatever the file says. On error the keys in force
// stay as they were and the error is returned.
func (k *Keyring) Reload() error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	return k.reloadLocked("reload")
}

// checkFile reloads the keys file, on a request, if it changed since it
// was last read: looked at once per checkInterval at most, on the
// Keyring's clock. A file that does not load is logged once per change
// and the keys in force stay.
func (k *Keyring) checkFile(now time.Time) {
	next := k.nextCheck.Load()
	if now.UnixNano() < next || !k.nextCheck.CompareAndSwap(next, now.Add(checkInterval).UnixNano()) {
		return
	}
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	fi, err := os.Stat(k.path)
	if err != nil && k.seen == nil || err == nil && sameFile(fi, k.seen) {
		return
	}
	if err := k.reloadLocked("file changed"); err != nil {
		k.log.Error().Err(err).Msg("the keys file changed but does not load: the keys in force stay")
	}
}

// sameFile reports whether b, as read before, is still the file a is.
func sameFile(a, b os.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size() && a.Mode() == b.Mode()
}

// reloadLocked is Reload under k.reloadMu.
func (k *Keyring) reloadLocked(trigger string) error {
	keys, fi, err := readKeys(k.path)
	k.seen = fi
	if err != nil {
		return err
	}
	old := *k.set.Load()
	now := k.clk.Now()
	var added, changed, removed []string
	for id, key := range keys {
		was, ok := old[id]
		switch {
		case !ok:
			added = append(added, id)
		case subtle.ConstantTimeCompare(was.secret, key.secret) != 1:
			changed = append(changed, id)
		default:
			if was.limit.Limit() != key.limit.Limit() {
				was.limit.SetLimitAt(now, key.limit.Limit())
			}
			if was.limit.Burst() != key.limit.Burst() {
				was.limit.SetBurstAt(now, key.limit.Burst())
			}
			key.limit = was.limit
		}
	}
	for id := range old {
		if _, ok := keys[id]; !ok {
			removed = append(removed, id)
		}
	}
	k.set.Store(&keys)
	slices.Sort(added)
	slices.Sort(changed)
	slices.Sort(removed)
	k.log.Info().Str("trigger", trigger).Int("keys", len(keys)).Strs("added", added).Strs("secret_changed", changed).
		Strs("removed", removed).Msg("keys file reloaded")
	return nil
}
