package venues

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestSecret_NeverPrintsItsValue(t *testing.T) {
	const value = "fake-secret-value-123"
	s := NewSecret(value)
	type holder struct {
		Key Secret `json:"key"`
	}
	j, _ := json.Marshal(holder{s})
	var logged bytes.Buffer
	lg := zerolog.New(&logged)
	lg.Info().Interface("key", s).Object("obj", s).Str("str", s.String()).Msg("x")
	for name, got := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%+v": fmt.Sprintf("%+v", holder{s}),
		"%#v": fmt.Sprintf("%#v", s), "%q": fmt.Sprintf("%q", s), "json": string(j), "zerolog": logged.String(),
		"error": fmt.Errorf("sign with %v", s).Error(),
	} {
		if strings.Contains(got, value) || !strings.Contains(got, "[REDACTED]") {
			t.Errorf("%s printed %q", name, got)
		}
	}
	if s.Reveal() != value {
		t.Fatal("Reveal lost the value")
	}
	// Inside an unexported field fmt cannot call the methods: the value
	// must still not show.
	type adapter struct {
		name string
		key  Secret
	}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if got := fmt.Sprintf(verb, adapter{"binance", s}); strings.Contains(got, value) {
			t.Errorf("%s of a struct holding the secret in an unexported field printed %q", verb, got)
		}
	}
}

func TestSecretSources_ErrorsDoNotRepeatWhatTheConfigNamed(t *testing.T) {
	// A secret pasted where its source's name belongs must not come back
	// in the error.
	const pasted = "AbCdEf0123456789AbCdEf0123456789AbCdEf0123456789"
	if _, err := SecretFromEnv(pasted); err == nil || strings.Contains(err.Error(), pasted) {
		t.Fatalf("env: %v", err)
	}
	if _, err := SecretFromFile("sk+live/" + pasted); err == nil || strings.Contains(err.Error(), pasted) {
		t.Fatalf("file: %v", err)
	}
}

func TestSecretFromFile_RefusesFilesOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	private := filepath.Join(dir, "private")
	_ = os.WriteFile(open, []byte("k\n"), 0o644)
	_ = os.WriteFile(private, []byte(" k \n"), 0o600)
	if _, err := SecretFromFile(open); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 file: err = %v", err)
	}
	s, err := SecretFromFile(private)
	if err != nil || s.Reveal() != "k" {
		t.Fatalf("0600 file: %v %q", err, s.Reveal())
	}
	t.Setenv("BLOCKEXEC_TEST_FAKE_SECRET", "v")
	if s, err := SecretFromEnv("BLOCKEXEC_TEST_FAKE_SECRET"); err != nil || s.Reveal() != "v" {
		t.Fatalf("env: %v", err)
	}
	if _, err := SecretFromEnv("BLOCKEXEC_TEST_UNSET_SECRET"); err == nil {
		t.Fatal("unset variable accepted")
	}
}
