package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/client"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/service"
	"github.com/blockexec/blockexec/venues/venuetest"
)

// runKeysNew runs blockexec keys new with args and returns stdout and the
// error.
func runKeysNew(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(append([]string{"keys", "new"}, args...))
	err := root.Execute()
	return out.String(), err
}

// checkSigns checks that a secret file's secret signs requests the keys
// file's key id accepts.
func checkSigns(t *testing.T, keysFile, keyID, secretFile string) {
	t.Helper()
	fi, err := os.Stat(secretFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file %s: %v %v, want mode 0600", secretFile, fi, err)
	}
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := service.LoadKeys(keysFile, clock.Wall{})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Now().UnixMilli()
	nonce := "keys-new-test-" + randomToken()
	canonical := api.Canonical(http.MethodGet, "/v1/orders", "", ms, nonce, nil)
	key, aerr, _ := keys.Authenticate(service.Signed{KeyID: keyID, Timestamp: strconv.FormatInt(ms, 10), Nonce: nonce,
		Signature: api.Sign(bytes.TrimSpace(secret), canonical), Method: http.MethodGet, Path: "/v1/orders"})
	if aerr != nil || key.ID != keyID {
		t.Fatalf("the new key does not sign: %v", aerr)
	}
}

func TestKeysNew_AddsKeysThatServeLoads(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.yaml")
	out, err := runKeysNew(t, "--file", file, "--client", "fund-a", "--id", "fund-a-1", "--scopes", "read,trade",
		"--secret-out", filepath.Join(dir, "a1.secret"))
	if err != nil || !strings.Contains(out, "key fund-a-1 for fund-a (read, trade) added") {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := runKeysNew(t, "--file", file, "--client", "fund-a", "--scopes", "read", "--rate", "5",
		"--secret-out", filepath.Join(dir, "a2.secret")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file: %v %v, want mode 0600", fi, err)
	}
	b, _ := os.ReadFile(file)
	ids, err := service.CheckKeys(file, b)
	if err != nil || len(ids) != 2 || ids[0] != "fund-a-1" || !strings.HasPrefix(ids[1], "fund-a-") {
		t.Fatalf("ids %q %v", ids, err)
	}
	checkSigns(t, file, "fund-a-1", filepath.Join(dir, "a1.secret"))
	checkSigns(t, file, ids[1], filepath.Join(dir, "a2.secret"))
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %q", left)
	}
}

// TestKeysNew_ARefusedKeyTouchesNoFile: whatever is wrong with the key,
// the keys file stays byte for byte as it was and no secret file is made.
func TestKeysNew_ARefusedKeyTouchesNoFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"an unknown scope", []string{"--client", "fund-b", "--scopes", "read,trading"},
			[]string{"--scopes", `"trading" is not a scope`, "read, trade or admin"}},
		{"no scope", []string{"--client", "fund-b", "--scopes", ""}, []string{"--scopes", "missing"}},
		{"a duplicate id", []string{"--client", "fund-b", "--id", "fund-a-1", "--scopes", "read"},
			[]string{"--id", `already has a key "fund-a-1"`}},
		{"a bad client", []string{"--client", "fund b", "--scopes", "read"}, []string{"--client", "letters, digits"}},
		{"a bad id", []string{"--client", "fund-b", "--id", "-x", "--scopes", "read"}, []string{"--id", "letters, digits"}},
		{"a negative rate", []string{"--client", "fund-b", "--scopes", "read", "--rate", "-1"}, []string{"--rate", ">= 0"}},
		{"the secret written over the keys file", []string{"--client", "fund-b", "--scopes", "read", "--secret-out", "KEYS"},
			[]string{"--secret-out", "is the keys file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "keys.yaml")
			if _, err := runKeysNew(t, "--file", file, "--client", "fund-a", "--id", "fund-a-1", "--scopes", "read,trade",
				"--secret-out", filepath.Join(dir, "a1.secret")); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(file)
			secret := filepath.Join(dir, "new.secret")
			args := append([]string{"--file", file, "--secret-out", secret}, tc.args...)
			for i, a := range args {
				if a == "KEYS" {
					args[i] = file
				}
			}
			_, err := runKeysNew(t, args...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitBadConfig {
				t.Fatalf("%v, want exit code %d", err, exitBadConfig)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after, _ := os.ReadFile(file); !bytes.Equal(after, before) {
				t.Fatalf("the keys file changed:\n%s\nwas\n%s", after, before)
			}
			if _, err := os.Stat(secret); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a secret file was written: %v", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 2 {
				t.Fatalf("%d files in the directory, want the keys file and a1.secret", len(entries))
			}
			if _, err := service.LoadKeys(file, clock.Wall{}); err != nil {
				t.Fatalf("the keys file no longer loads: %v", err)
			}
		})
	}
}

func TestKeysNew_RefusesToAddToAFileServeWouldRefuse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.yaml")
	broken := "keys:\n  - {id: a-1, client: fund-a, secret: short, scopes: [read]}\n"
	if err := os.WriteFile(file, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "new.secret")
	_, err := runKeysNew(t, "--file", file, "--client", "fund-b", "--scopes", "read", "--secret-out", secret)
	if err == nil || !strings.Contains(err.Error(), "keys[0].secret") || !strings.Contains(err.Error(), "nothing was added") {
		t.Fatalf("%v, want the file's fault", err)
	}
	if after, _ := os.ReadFile(file); string(after) != broken {
		t.Fatalf("the keys file changed:\n%s", after)
	}
	if _, err := os.Stat(secret); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a secret file was written: %v", err)
	}
}

// TestKeysNew_AKeysFileNotWrittenTakesTheSecretFileWithIt: the keys file
// cannot be replaced (its temporary file's name is too long), after the
// secret was written: the secret file is removed.
func TestKeysNew_AKeysFileNotWrittenTakesTheSecretFileWithIt(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, strings.Repeat("k", 250)+".yaml")
	secret := filepath.Join(dir, "new.secret")
	_, err := runKeysNew(t, "--file", file, "--client", "fund-a", "--scopes", "read", "--secret-out", secret)
	if err == nil || !strings.Contains(err.Error(), "keys file") {
		t.Fatalf("%v, want the keys file's write to fail", err)
	}
	if _, err := os.Stat(secret); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the secret file of a key not added is left: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d files left", len(entries))
	}
}

// rewriteInPlace changes a file's bytes (the same length) and keeps its
// inode, size, mode and modification time, so that only a SIGHUP, not a
// look at the file, finds the change.
func rewriteInPlace(t *testing.T, path, old, new string) {
	t.Helper()
	if len(old) != len(new) {
		t.Fatalf("%q and %q differ in length", old, new)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not hold %q (%v)", path, old, err)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Now(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// eventually retries fn for up to five seconds until it returns nil.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err = fn(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func TestServe_SIGHUPReloadsTheKeysFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServed(t)
	logs := &venuetest.LogBuffer{}
	sv.s.j.log = zerolog.New(logs)
	sv.s.keys.SetLog(zerolog.New(logs))
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- sv.s.wait(ctx, hup) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	path := sv.s.j.cfg.Service.KeysFile
	list := func(id string, secret []byte) error {
		c, err := client.New(client.Config{BaseURL: sv.url, KeyID: id, Secret: secret, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.List(context.Background(), "")
		return err
	}
	if err := list("viewer-1", sv.secrets["viewer-1"]); err != nil {
		t.Fatal(err)
	}

	// The key renamed: in force after the SIGHUP, the old id refused.
	rewriteInPlace(t, path, "id: viewer-1,", "id: viewer-2,")
	hup <- syscall.SIGHUP
	eventually(t, "the renamed key after SIGHUP", func() error { return list("viewer-2", sv.secrets["viewer-1"]) })
	var ae *api.Error
	if err := list("viewer-1", sv.secrets["viewer-1"]); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized ||
		!strings.Contains(ae.Message, "unknown key") {
		t.Fatalf("the removed key: %v", err)
	}

	// A file that does not load: logged, the keys in force stay.
	rewriteInPlace(t, path, "keys:", "kexs:")
	hup <- syscall.SIGHUP
	eventually(t, "the error logged", func() error {
		if !strings.Contains(logs.String(), "SIGHUP: the keys file does not load") {
			return errors.New("not logged")
		}
		return nil
	})
	if err := list("viewer-2", sv.secrets["viewer-1"]); err != nil {
		t.Fatalf("a key in force before a bad file: %v", err)
	}
	if err := list("fund-a-1", sv.secrets["fund-a-1"]); err != nil {
		t.Fatalf("a key in force before a bad file: %v", err)
	}
	if strings.Contains(logs.String(), "test-secret-") {
		t.Fatalf("a secret was logged:\n%s", logs)
	}
}
