package configs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that every failure is a
// *FieldError placed on a real line.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("examples/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(bytes.Replace(data, []byte("8h"), []byte("8 hours"), 1))
	}
	for _, s := range []string{
		minimal,
		strings.Replace(minimal, "quantity: 0.1", "quantity: 1e-8", 1),
		strings.Replace(minimal, "  base: BTC\n", "  base: [BTC\n", 1),
		strings.Replace(minimal, "venues:", "venues: &v", 1) + "x: *v\n",
		"run: 5\n", "- a\n- b\n", "hello", "{", "a: b: c", "---\n---\nrun: {}\n", "\t", "<<: *x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			// Parents may be absent (serve's configs); venues may not.
			if cfg == nil || len(cfg.Venues) == 0 {
				t.Fatalf("nil error but config %+v", cfg)
			}
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("error %T is not a *FieldError: %v", err, err)
		}
		if fe.Line < 1 || fe.Column < 1 {
			t.Fatalf("error without a position: %v", err)
		}
	})
}
