package marketdata

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReadDirLenient_LeavesOutUnreadableFilesAndNamesThem(t *testing.T) {
	dayOf := func(n int) []string {
		var out []string
		for m := 0; m < 3; m++ {
			out = append(out, synth(t0.Add(time.Duration(n)*day+time.Duration(m)*time.Minute), false, "1"))
		}
		return out
	}
	corrupt := dayOf(2)
	corrupt[1] = "1,2"
	dir := writeFiles(t, map[string]string{
		"d0.csv": rows(dayOf(0)...),
		"d1.csv": "", // empty: no bars, not an error
		"d2.csv": rows(corrupt...),
		"d3.csv": rows(dayOf(3)...),
	})
	if _, err := ReadDir(dir); err == nil {
		t.Fatal("ReadDir accepted a corrupt file")
	}
	s, skipped, err := ReadDirLenient(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 6 {
		t.Fatalf("%d bars, want the 6 of the two good files", s.Len())
	}
	var pe *ParseError
	if len(skipped) != 1 || !strings.HasSuffix(skipped[0].Path, "d2.csv") || !errors.As(skipped[0].Err, &pe) || pe.Line != 2 {
		t.Fatalf("skipped %+v, want d2.csv with a *ParseError at line 2", skipped)
	}
	missing := s.MissingDays()
	if len(missing) != 2 || !missing[0].Equal(t0.Add(day)) || !missing[1].Equal(t0.Add(2*day)) {
		t.Fatalf("missing days %v, want the empty and the corrupt file's", missing)
	}
}

func TestReadDirLenient_StillRefusesWhatItCannotResolve(t *testing.T) {
	only := writeFiles(t, map[string]string{"a.csv": rows("1,2"), "b.csv": rows("x")})
	if _, skipped, err := ReadDirLenient(only); !errors.Is(err, ErrNoBars) || len(skipped) != 2 ||
		!strings.Contains(err.Error(), "every file was left out") {
		t.Fatalf("err = %v, skipped %v", err, skipped)
	}
	dup := writeFiles(t, map[string]string{"a.csv": rows(synth(t0, false, "1")), "b.csv": rows(synth(t0, true, "2"))})
	if _, _, err := ReadDirLenient(dup); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("a minute in two files: err = %v", err)
	}
}
