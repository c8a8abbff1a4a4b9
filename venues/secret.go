package venues

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/rs/zerolog"
)

const redacted = "[REDACTED]"

// Secret holds an API key or secret. Every way of printing it prints
// [REDACTED]; only Reveal gives the value, for signing. The value sits
// behind a pointer: fmt cannot call String on a Secret in an unexported
// field of another struct, and prints such a pointer as an address.
type Secret struct{ p *secretValue }

type secretValue struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{p: &secretValue{v: s}} }

// Reveal returns the value. Call it only to hand the key to a signer.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return s.p.v
}

// Empty reports whether no value is set.
func (s Secret) Empty() bool { return s.Reveal() == "" }

// String prints [REDACTED].
func (s Secret) String() string { return redacted }

// GoString prints [REDACTED] for %#v.
func (s Secret) GoString() string { return redacted }

// Format prints [REDACTED] for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON writes "[REDACTED]".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText writes [REDACTED].
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalZerologObject logs [REDACTED].
func (s Secret) MarshalZerologObject(e *zerolog.Event) { e.Str("secret", redacted) }

// SecretFromEnv reads a secret from the environment variable name. Its
// error does not repeat the name, which may be a secret pasted by mistake:
// the caller says which field named it.
func SecretFromEnv(name string) (Secret, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return Secret{}, errors.New("the environment variable it names is not set (or is empty)")
	}
	return NewSecret(strings.TrimSpace(v)), nil
}

// SecretFromFile reads a secret from a file that only its owner may read:
// a file readable or writable by group or others is refused. Its errors
// do not repeat the path, which may be a secret pasted by mistake: the
// caller says which field named it.
func SecretFromFile(path string) (Secret, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Secret{}, fmt.Errorf("the file it names cannot be read: %w", pathless(err))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Secret{}, fmt.Errorf("the file it names has mode %04o: group or others can access it; chmod 600 it", perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Secret{}, fmt.Errorf("the file it names cannot be read: %w", pathless(err))
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return Secret{}, errors.New("the file it names is empty")
	}
	return NewSecret(v), nil
}

// pathless drops the path from a file system error.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
