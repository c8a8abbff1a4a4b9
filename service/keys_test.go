package service

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
)

// testKey is one entry of a keys file written by a test.
type testKey struct {
	id, secret  string
	rate, burst int // 0: the defaults
}

func keysSecret(id string) string { return "keys-test-secret-" + id + "-0123456789abcdef" }

// writeKeys writes a keys file of mode 0600 holding keys.
func writeKeys(t *testing.T, path string, keys ...testKey) {
	t.Helper()
	var b strings.Builder
	b.WriteString("keys:\n")
	for _, k := range keys {
		if k.secret == "" {
			k.secret = keysSecret(k.id)
		}
		fmt.Fprintf(&b, "  - {id: %s, client: fund-a, secret: %q, scopes: [read], rate_per_second: %d, burst: %d}\n",
			k.id, k.secret, k.rate, k.burst)
	}
	writeMode(t, path, b.String(), 0o600)
}

// writeMode writes a file and gives it perm, past the umask.
func writeMode(t *testing.T, path, text string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// keysRig is a Keyring over a keys file on a manual clock, logging to logs.
type keysRig struct {
	path   string
	clk    *clock.Manual
	keys   *Keyring
	logs   *syncBuffer
	nonces atomic.Int64
}

func newKeysRig(t *testing.T, keys ...testKey) *keysRig {
	t.Helper()
	r := &keysRig{path: filepath.Join(t.TempDir(), "keys.yaml"), clk: clock.NewManual(httpT0), logs: &syncBuffer{}}
	writeKeys(t, r.path, keys...)
	var err error
	if r.keys, err = LoadKeys(r.path, r.clk); err != nil {
		t.Fatal(err)
	}
	r.keys.SetLog(zerolog.New(r.logs))
	return r
}

// signed is a GET /v1/orders signed now with the key's secret as written
// by writeKeys.
func (r *keysRig) signed(id string) Signed {
	nonce := fmt.Sprintf("keys-test-nonce-%08d", r.nonces.Add(1))
	ms := r.clk.Now().UnixMilli()
	canonical := api.Canonical(http.MethodGet, "/v1/orders", "", ms, nonce, nil)
	return Signed{KeyID: id, Timestamp: strconv.FormatInt(ms, 10), Nonce: nonce,
		Signature: api.Sign([]byte(keysSecret(id)), canonical), Method: http.MethodGet, Path: "/v1/orders"}
}

// status is what Authenticate answers s: 200, or the refusal's status,
// and the refusal's message.
func (r *keysRig) status(s Signed) (int, string) {
	key, aerr, _ := r.keys.Authenticate(s)
	switch {
	case aerr != nil:
		return aerr.Status, aerr.Message
	case key == nil || key.ID != s.KeyID:
		return 0, fmt.Sprintf("key %v for %s", key, s.KeyID)
	}
	return http.StatusOK, ""
}

// want checks that Authenticate answers s with status and a message
// holding why.
func (r *keysRig) want(t *testing.T, s Signed, status int, why string) {
	t.Helper()
	got, msg := r.status(s)
	if got != status || !strings.Contains(msg, why) {
		t.Fatalf("key %s: %d %q, want %d %q", s.KeyID, got, msg, status, why)
	}
}

func (r *keysRig) nonceCount() int {
	r.keys.mu.Lock()
	defer r.keys.mu.Unlock()
	return len(r.keys.nonces)
}

func TestLoadKeys_RefusesAFileGroupOrOthersCanRead(t *testing.T) {
	for _, tc := range []struct {
		perm os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o644, false}, {0o640, false}, {0o604, false}, {0o660, false}} {
		t.Run(fmt.Sprintf("%04o", tc.perm), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.yaml")
			writeKeys(t, path, testKey{id: "k-1"})
			if err := os.Chmod(path, tc.perm); err != nil {
				t.Fatal(err)
			}
			_, err := LoadKeys(path, clock.NewManual(httpT0))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("a keys file of mode %04o was loaded", tc.perm)
			}
			for _, want := range []string{path, fmt.Sprintf("%04o", tc.perm), "chmod 600"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

func TestKeyring_AChangedFileIsReloadedOnARequestAtMostOnceASecond(t *testing.T) {
	r := newKeysRig(t, testKey{id: "old-1"})
	r.want(t, r.signed("old-1"), http.StatusOK, "")

	// A key added: not looked for again within the second, then in force
	// without a restart.
	writeKeys(t, r.path, testKey{id: "old-1"}, testKey{id: "new-1"})
	r.want(t, r.signed("new-1"), http.StatusUnauthorized, "unknown key")
	r.clk.Advance(checkInterval)
	r.want(t, r.signed("new-1"), http.StatusOK, "")
	r.want(t, r.signed("old-1"), http.StatusOK, "")

	// A key removed: refused once the file is looked at again.
	writeKeys(t, r.path, testKey{id: "new-1"})
	r.clk.Advance(checkInterval)
	r.want(t, r.signed("old-1"), http.StatusUnauthorized, `unknown key "old-1"`)
	r.want(t, r.signed("new-1"), http.StatusOK, "")

	logs := r.logs.String()
	if n := strings.Count(logs, "keys file reloaded"); n != 2 {
		t.Errorf("%d reloads logged, want 2:\n%s", n, logs)
	}
	for _, want := range []string{`"added":["new-1"]`, `"removed":["old-1"]`, `"keys":1`, `"trigger":"file changed"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the reload logs do not hold %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "keys-test-secret") {
		t.Errorf("a reload logged a secret:\n%s", logs)
	}
}

func TestKeyring_ReloadPutsTheFileInForceAtOnce(t *testing.T) {
	r := newKeysRig(t, testKey{id: "old-1"})
	writeKeys(t, r.path, testKey{id: "new-1"})
	if err := r.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	r.want(t, r.signed("new-1"), http.StatusOK, "")
	r.want(t, r.signed("old-1"), http.StatusUnauthorized, "unknown key")
	if logs := r.logs.String(); !strings.Contains(logs, `"trigger":"reload"`) || !strings.Contains(logs, `"removed":["old-1"]`) {
		t.Errorf("the reload is not logged:\n%s", logs)
	}
}

func TestKeyring_AFileThatDoesNotLoadLeavesTheKeysInForce(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		perm       os.FileMode
		why        string
	}{
		{"not YAML", "keys: [\n", 0o600, "keys file"},
		{"an unknown scope", "keys:\n  - {id: new-1, client: fund-a, secret: \"" + keysSecret("new-1") +
			"\", scopes: [trading]}\n", 0o600, `"trading" is not a scope`},
		{"a short secret", "keys:\n  - {id: new-1, client: fund-a, secret: short, scopes: [read]}\n", 0o600, "secret"},
		{"no keys", "keys: []\n", 0o600, "no keys"},
		{"readable by others", "keys:\n  - {id: new-1, client: fund-a, secret: \"" + keysSecret("new-1") +
			"\", scopes: [read]}\n", 0o644, "mode 0644"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newKeysRig(t, testKey{id: "old-1"})
			writeMode(t, r.path, tc.text, tc.perm)
			if err := r.keys.Reload(); err == nil || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Reload: %v, want an error about %q", err, tc.why)
			}
			r.want(t, r.signed("old-1"), http.StatusOK, "")
			r.want(t, r.signed("new-1"), http.StatusUnauthorized, "unknown key")

			// Found by a request: logged once, however many requests
			// look at the file, and the keys in force stay.
			r = newKeysRig(t, testKey{id: "old-1"})
			writeMode(t, r.path, tc.text, tc.perm)
			for range 3 {
				r.clk.Advance(checkInterval)
				r.want(t, r.signed("old-1"), http.StatusOK, "")
				r.want(t, r.signed("new-1"), http.StatusUnauthorized, "unknown key")
			}
			logs := r.logs.String()
			if n := strings.Count(logs, "does not load"); n != 1 || !strings.Contains(logs, strings.ReplaceAll(tc.why, `"`, `\"`)) {
				t.Errorf("%d errors logged, want 1 about %q:\n%s", n, tc.why, logs)
			}
			if strings.Contains(logs, "keys-test-secret") {
				t.Errorf("a secret was logged:\n%s", logs)
			}
			// Mended, the file is read again.
			writeKeys(t, r.path, testKey{id: "old-1"}, testKey{id: "new-1"})
			r.clk.Advance(checkInterval)
			r.want(t, r.signed("new-1"), http.StatusOK, "")
		})
	}
}

func TestKeyring_AReloadKeepsNoncesAndRateStateOfTheKeysThatStay(t *testing.T) {
	r := newKeysRig(t, testKey{id: "stays-1", rate: 1, burst: 1}, testKey{id: "rotated-1", rate: 1, burst: 1})
	first := r.signed("stays-1")
	r.want(t, first, http.StatusOK, "")
	r.want(t, r.signed("stays-1"), http.StatusTooManyRequests, "over its rate")
	rotated := r.signed("rotated-1")
	r.want(t, rotated, http.StatusOK, "")

	// rotated-1 gets a new secret, and a key is added.
	writeKeys(t, r.path, testKey{id: "stays-1", rate: 1, burst: 1},
		testKey{id: "rotated-1", secret: keysSecret("rotated-1") + "-v2", rate: 1, burst: 1}, testKey{id: "new-1"})
	if err := r.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	// A request seen before the reload is still a replay after it.
	r.want(t, first, http.StatusUnauthorized, "nonce seen before")
	// The key that stayed has spent its token; the rotated one starts
	// afresh (its old secret no longer signs).
	r.want(t, r.signed("stays-1"), http.StatusTooManyRequests, "over its rate")
	r.want(t, rotated, http.StatusUnauthorized, "bad signature")
	if logs := r.logs.String(); !strings.Contains(logs, `"secret_changed":["rotated-1"]`) {
		t.Errorf("the rotation is not logged:\n%s", logs)
	}
	ms := r.clk.Now().UnixMilli()
	nonce := "keys-test-nonce-rotated"
	s := Signed{KeyID: "rotated-1", Timestamp: strconv.FormatInt(ms, 10), Nonce: nonce, Method: http.MethodGet, Path: "/v1/orders",
		Signature: api.Sign([]byte(keysSecret("rotated-1")+"-v2"), api.Canonical(http.MethodGet, "/v1/orders", "", ms, nonce, nil))}
	r.want(t, s, http.StatusOK, "")
}

func TestKeyring_ARateRefusalSpendsNoNonce(t *testing.T) {
	r := newKeysRig(t, testKey{id: "slow-1", rate: 1, burst: 1})
	r.want(t, r.signed("slow-1"), http.StatusOK, "")
	refused := r.signed("slow-1")
	for range 5 {
		r.want(t, r.signed("slow-1"), http.StatusTooManyRequests, "over its rate")
	}
	r.want(t, refused, http.StatusTooManyRequests, "over its rate")
	if n := r.nonceCount(); n != 1 {
		t.Fatalf("%d nonces remembered after one request and six refused, want 1", n)
	}
	// Within the window, the refused request sent again is not a replay.
	r.clk.Advance(time.Second)
	r.want(t, refused, http.StatusOK, "")
}

func TestKeyring_ForgeriesAndReplaysSpendNoRateToken(t *testing.T) {
	r := newKeysRig(t, testKey{id: "slow-1", rate: 1, burst: 2})
	first := r.signed("slow-1")
	r.want(t, first, http.StatusOK, "")
	for range 3 {
		forged := r.signed("slow-1")
		forged.Signature = api.Sign([]byte("not-the-secret-not-the-secret-00"),
			api.Canonical(forged.Method, forged.Path, "", r.clk.Now().UnixMilli(), forged.Nonce, nil))
		r.want(t, forged, http.StatusUnauthorized, "bad signature")
		r.want(t, first, http.StatusUnauthorized, "nonce seen before")
	}
	// The second token of the burst is still there.
	r.want(t, r.signed("slow-1"), http.StatusOK, "")
	r.want(t, r.signed("slow-1"), http.StatusTooManyRequests, "over its rate")
}

func TestKeyring_TheSweepDropsExpiredNonces(t *testing.T) {
	r := newKeysRig(t, testKey{id: "k-1", rate: 1000, burst: 1000})
	for range 10 {
		r.want(t, r.signed("k-1"), http.StatusOK, "")
	}
	if n := r.nonceCount(); n != 10 {
		t.Fatalf("%d nonces remembered, want 10", n)
	}
	// A sweep a window later drops none: they are remembered for twice
	// the window.
	r.clk.Advance(api.Window + time.Millisecond)
	r.want(t, r.signed("k-1"), http.StatusOK, "")
	if n := r.nonceCount(); n != 11 {
		t.Fatalf("%d nonces remembered before they expire, want 11", n)
	}
	// The next sweep, a window later, drops the ten that expired.
	r.clk.Advance(api.Window + time.Millisecond)
	r.want(t, r.signed("k-1"), http.StatusOK, "")
	if n := r.nonceCount(); n != 2 {
		t.Fatalf("%d nonces remembered after ten expired, want 2", n)
	}
}

func TestCheckKeys_NamesTheEntryAndField(t *testing.T) {
	good := "keys:\n  - {id: a-1, client: fund-a, secret: \"" + keysSecret("a-1") + "\", scopes: [read]}\n"
	if ids, err := CheckKeys("k.yaml", []byte(good)); err != nil || len(ids) != 1 || ids[0] != "a-1" {
		t.Fatalf("CheckKeys: %v %v", ids, err)
	}
	if ids, err := CheckKeys("k.yaml", nil); err != nil || len(ids) != 0 {
		t.Fatalf("an empty file: %v %v", ids, err)
	}
	dup := good + "  - {id: a-1, client: fund-a, secret: \"" + keysSecret("a-2") + "\", scopes: [read]}\n"
	if _, err := CheckKeys("k.yaml", []byte(dup)); err == nil || !strings.Contains(err.Error(), `keys[1].id: "a-1" is used twice`) {
		t.Fatalf("a duplicate id: %v", err)
	}
	if _, err := CheckKeys("k.yaml", []byte(strings.Replace(good, "[read]", "[read, trading]", 1))); err == nil ||
		!strings.Contains(err.Error(), `keys[0].scopes[1]: "trading" is not a scope`) {
		t.Fatalf("a bad scope: %v", err)
	}
	for _, tc := range []struct {
		id, client string
		scopes     []string
		rate       float64
		field      string
	}{
		{"a-1", "fund-a", []string{"read", "trade"}, 0, ""},
		{"a 1", "fund-a", []string{"read"}, 0, "id"},
		{"a-1", "fund a", []string{"read"}, 0, "client"},
		{"a-1", "fund-a", nil, 0, "scopes"},
		{"a-1", "fund-a", []string{"read", "trading"}, 0, "scopes[1]"},
		{"a-1", "fund-a", []string{"read"}, -1, "rate_per_second"},
	} {
		err := CheckKey(tc.id, tc.client, tc.scopes, tc.rate)
		var ke *KeyError
		if tc.field == "" && err != nil || tc.field != "" && (!errors.As(err, &ke) || ke.Field != tc.field) {
			t.Errorf("CheckKey(%q, %q, %q, %g): %v, want field %q", tc.id, tc.client, tc.scopes, tc.rate, err, tc.field)
		}
	}
}
