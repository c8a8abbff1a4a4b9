package service

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
)

// Scopes a key may carry.
const (
	ScopeRead  = "read"  // see orders, fills and events
	ScopeTrade = "trade" // submit, pause, resume, amend, cancel
	ScopeAdmin = "admin" // the kill switch, and every client's orders
)

// Key is one API key. A client may hold several at once, so keys rotate
// without downtime.
type Key struct {
	ID     string
	Client string
	Scopes map[string]bool
	secret []byte
	limit  *rate.Limiter
}

// Has reports whether the key carries scope.
func (k *Key) Has(scope string) bool { return k.Scopes[scope] }

// Allows reports whether the key may use something that needs scope: it
// carries the scope, or admin, which implies read and trade.
func (k *Key) Allows(scope string) bool { return k.Has(scope) || k.Has(ScopeAdmin) }

// Caller is who the key speaks for.
func (k *Key) Caller() Caller { return Caller{Client: k.Client, Admin: k.Has(ScopeAdmin)} }

// keyFile is the keys file's schema.
type keyFile struct {
	Keys []keyEntry `yaml:"keys"`
}

// keyEntry is one key of the keys file.
type keyEntry struct {
	ID            string   `yaml:"id"`
	Client        string   `yaml:"client"`
	Secret        string   `yaml:"secret"`
	Scopes        []string `yaml:"scopes"`
	RatePerSecond float64  `yaml:"rate_per_second"`
	Burst         int      `yaml:"burst"`
}

// Defaults of a key's rate limit.
const (
	defaultRate  = 20
	defaultBurst = 40
	minSecretLen = 32
)

// KeyError is a key's field that the keys file may not hold: Field is
// its name in the file (id, client, scopes[1], rate_per_second).
type KeyError struct {
	Field, Reason string
}

// Error is the field and why it is refused.
func (e *KeyError) Error() string { return e.Field + ": " + e.Reason }

// CheckKey checks a key's id, client, scopes and rate as LoadKeys checks
// an entry of the keys file (rate 0: the default).
func CheckKey(id, client string, scopes []string, rate float64) error {
	if err := checkEntry(keyEntry{ID: id, Client: client, Scopes: scopes, RatePerSecond: rate}); err != nil {
		return err
	}
	return nil
}

// checkEntry checks all of an entry but its secret.
func checkEntry(e keyEntry) *KeyError {
	const name = "want 1 to 64 letters, digits, '-' or '_', starting with a letter or digit"
	switch {
	case !orderIDPattern.MatchString(e.Client): // first: an id may be made from it
		return &KeyError{"client", name}
	case !orderIDPattern.MatchString(e.ID):
		return &KeyError{"id", name}
	case len(e.Scopes) == 0:
		return &KeyError{"scopes", "missing: read, trade or admin"}
	case !(e.RatePerSecond >= 0) || math.IsInf(e.RatePerSecond, 0) || e.Burst < 0:
		return &KeyError{"rate_per_second", "rate_per_second and burst must be >= 0 (0: the defaults)"}
	}
	for j, s := range e.Scopes {
		if s != ScopeRead && s != ScopeTrade && s != ScopeAdmin {
			return &KeyError{fmt.Sprintf("scopes[%d]", j), fmt.Sprintf("%q is not a scope: read, trade or admin", s)}
		}
	}
	return nil
}

// Keyring holds the API keys and checks signed requests: the key, the
// timestamp window, the nonce, the signature and the rate limit. The keys
// file may change while it serves (see Reload). Safe for concurrent use.
type Keyring struct {
	clk  clock.Clock
	path string
	set  atomic.Pointer[keySet] // the keys in force, swapped whole

	reloadMu  sync.Mutex // one reload at a time; guards log and seen
	log       zerolog.Logger
	seen      os.FileInfo  // the keys file as last read or tried; nil: it could not be opened
	nextCheck atomic.Int64 // Unix ns: when a request may next look at the file

	mu     sync.Mutex
	nonces map[string]time.Time // key id + nonce → when it expires
	swept  time.Time
}

// keySet is the keys of one reading of the file, by id.
type keySet map[string]*Key

// LoadKeys reads a keys file, which only its owner may read (mode 0600 or
// stricter: one readable by group or others is refused):
//
//	keys:
//	  - id: fund-a-2026-11        # sent as BX-Key
//	    client: fund-a            # whose orders the key sees and acts on
//	    secret: "…at least 32 characters…"
//	    scopes: [read, trade]     # read, trade, admin
//	    rate_per_second: 20       # default 20
//	    burst: 40                 # default 40
//
// No error repeats a secret.
func LoadKeys(path string, clk clock.Clock) (*Keyring, error) {
	keys, fi, err := readKeys(path)
	if err != nil {
		return nil, err
	}
	k := &Keyring{clk: clk, path: path, log: zerolog.Nop(), seen: fi, nonces: map[string]time.Time{}}
	k.set.Store(&keys)
	return k, nil
}

// CheckKeys checks a keys file's content as LoadKeys reads it (name is
// the file's, for the errors) and returns its key ids in order. Unlike
// LoadKeys, it takes a file without keys.
func CheckKeys(name string, b []byte) ([]string, error) {
	keys, err := parseKeys(name, b)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(keys))
	for i, key := range keys {
		ids[i] = key.ID
	}
	return ids, nil
}

// readKeys reads the keys file; with an error, the FileInfo is the
// file's if it could be opened.
func readKeys(path string) (keySet, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("keys file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("keys file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fi, fmt.Errorf("keys file %s has mode %04o: group or others can access it; chmod 600 it", path, perm)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fi, fmt.Errorf("keys file: %w", err)
	}
	list, err := parseKeys(path, b)
	if err != nil {
		return nil, fi, err
	}
	if len(list) == 0 {
		return nil, fi, fmt.Errorf("keys file %s: no keys", path)
	}
	keys := make(keySet, len(list))
	for _, key := range list {
		keys[key.ID] = key
	}
	return keys, fi, nil
}

// parseKeys decodes and checks a keys file's content, keys in file order.
func parseKeys(path string, b []byte) ([]*Key, error) {
	var f keyFile
	if err := yaml.UnmarshalWithOptions(b, &f, yaml.DisallowUnknownField()); err != nil {
		// The YAML library quotes the offending source line: keep only
		// where it is, so a secret on it is not repeated.
		var se yaml.Error
		if errors.As(err, &se) && se.GetToken() != nil {
			p := se.GetToken().Position
			return nil, fmt.Errorf("keys file %s:%d:%d: %s", path, p.Line, p.Column, se.GetMessage())
		}
		return nil, fmt.Errorf("keys file %s: not a valid keys file", path)
	}
	keys := make([]*Key, 0, len(f.Keys))
	seen := map[string]bool{}
	for i, e := range f.Keys {
		where := fmt.Sprintf("keys file %s: keys[%d]", path, i)
		if err := checkEntry(e); err != nil {
			return nil, fmt.Errorf("%s.%w", where, err)
		}
		switch {
		case seen[e.ID]:
			return nil, fmt.Errorf("%s.id: %q is used twice", where, e.ID)
		case len(e.Secret) < minSecretLen:
			return nil, fmt.Errorf("%s.secret: at least %d characters (e.g. 32 random bytes in hex)", where, minSecretLen)
		}
		seen[e.ID] = true
		key := &Key{ID: e.ID, Client: e.Client, Scopes: map[string]bool{}, secret: []byte(e.Secret)}
		for _, s := range e.Scopes {
			key.Scopes[s] = true
		}
		r, burst := e.RatePerSecond, e.Burst
		if r == 0 {
			r = defaultRate
		}
		if burst == 0 {
			burst = defaultBurst
		}
		key.limit = rate.NewLimiter(rate.Limit(r), burst)
		keys = append(keys, key)
	}
	return keys, nil
}

// Signed is what a request carries to be authenticated: the four headers
// and the canonical string it signs (api.Canonical of the request).
type Signed struct {
	KeyID, Timestamp, Nonce, Signature string
	Method, Path, Query                string
	Body                               []byte
}

// Authenticate checks a signed request and returns its key. A refusal is
// an *api.Error: 401 with the reason (unknown key, bad signature, stale
// timestamp, nonce seen before), or 429 when the key's rate is spent, with
// how long to wait (the Retry-After). The signature is compared in
// constant time.
func (k *Keyring) Authenticate(s Signed) (*Key, *api.Error, time.Duration) {
	unauthorized := func(format string, a ...any) (*Key, *api.Error, time.Duration) {
		return nil, api.Errorf(http.StatusUnauthorized, api.CodeUnauthorized, format, a...), 0
	}
	if s.KeyID == "" || s.Timestamp == "" || s.Nonce == "" || s.Signature == "" {
		return unauthorized("the request is not signed: send %s, %s, %s and %s", api.HeaderKey, api.HeaderTimestamp,
			api.HeaderNonce, api.HeaderSignature)
	}
	now := k.clk.Now()
	k.checkFile(now)
	key, ok := (*k.set.Load())[s.KeyID]
	if !ok {
		return unauthorized("unknown key %q", s.KeyID)
	}
	ms, err := strconv.ParseInt(s.Timestamp, 10, 64)
	if err != nil {
		return unauthorized("%s must be Unix milliseconds", api.HeaderTimestamp)
	}
	if skew := now.Sub(time.UnixMilli(ms)); skew > api.Window || skew < -api.Window {
		return unauthorized("timestamp outside the %s window (the server's clock reads %d)", api.Window, now.UnixMilli())
	}
	if len(s.Nonce) < 16 || len(s.Nonce) > 64 {
		return unauthorized("%s must have 16 to 64 characters", api.HeaderNonce)
	}
	canonical := api.Canonical(s.Method, s.Path, s.Query, ms, s.Nonce, s.Body)
	if !api.Verify(key.secret, canonical, s.Signature) {
		return unauthorized("bad signature: sign %s with the key's secret (see the API document)",
			"method, path, query, timestamp, nonce and the body's SHA-256")
	}
	// Only a request that verifies may spend a nonce or a rate token, so
	// a forger cannot burn a client's.
	if aerr, wait := k.admit(key, s.Nonce, now); aerr != nil {
		return nil, aerr, wait
	}
	return key, nil, 0
}

// admit spends a verified request's nonce and rate token under one lock:
// a replay is refused before it takes a token, and a request over the rate
// leaves nothing behind (its nonce stays unspent, so retrying it is not a
// replay, and refused requests cannot grow the nonce memory).
func (k *Keyring) admit(key *Key, nonce string, now time.Time) (*api.Error, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.swept) > api.Window {
		for n, exp := range k.nonces {
			if now.After(exp) {
				delete(k.nonces, n)
			}
		}
		k.swept = now
	}
	id := key.ID + "\x00" + nonce
	if exp, ok := k.nonces[id]; ok && !now.After(exp) {
		return api.Errorf(http.StatusUnauthorized, api.CodeUnauthorized,
			"nonce seen before within the window: a replay, or a client that reuses nonces"), 0
	}
	if r := key.limit.ReserveN(now, 1); !r.OK() || r.DelayFrom(now) > 0 {
		wait := r.DelayFrom(now)
		r.CancelAt(now)
		return api.Errorf(http.StatusTooManyRequests, api.CodeRateLimited,
			"key %s is over its rate of %g requests a second", key.ID, float64(key.limit.Limit())), wait
	}
	// A timestamp may be up to the window old or ahead: remember the nonce
	// for twice the window.
	k.nonces[id] = now.Add(2 * api.Window)
	return nil, 0
}
