// Package marketdata reads one-minute klines from Binance's public archive
// CSV files and holds them as a Series indexed by minute.
package marketdata

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Bar is one minute of trading.
type Bar struct {
	Open                time.Time // UTC, on a minute
	OpenPx, High, Low   decimal.Decimal
	Close               decimal.Decimal
	Volume, QuoteVolume decimal.Decimal // base (BTC) and quote (USDT) volume
	Trades              int64
}

// Columns is the number of fields in a Binance kline row.
const Columns = 12

// Sentinel errors, matched with errors.Is.
var (
	// ErrNoFiles is returned by ReadDir for a directory without *.csv files.
	ErrNoFiles = errors.New("marketdata: no csv files")
	// ErrNoBars is returned when a file or directory holds no rows at all.
	ErrNoBars = errors.New("marketdata: no bars")
	// ErrMissingDay is returned by Series.Day for a date without any bar.
	ErrMissingDay = errors.New("marketdata: day missing")
)

// ParseError is a row that cannot be read: File and Line say where, Msg what.
type ParseError struct {
	File string
	Line int
	Msg  string
}

// Error reads "file:line: what is wrong".
func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Timestamps below this are milliseconds, at or above it microseconds:
// 1e14 ms is the year 5138, 1e14 µs is 1973.
const microThreshold = 100_000_000_000_000

// Timestamps at or above this (as µs, the year 5138) are rejected.
const maxMicros = 100_000_000_000_000_000

// maxNumberLen bounds a numeric field; archive values are ~20 characters.
const maxNumberLen = 40

// ReadFile reads one kline CSV file.
func ReadFile(path string) ([]Bar, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("marketdata: %w", err)
	}
	defer f.Close()
	return Read(path, f)
}

// Read parses kline CSV rows from r; name is used in errors. Rows must be in
// strictly increasing time, one a minute at most. A header row whose first
// field is "open_time" is skipped (some archive files carry one).
func Read(name string, r io.Reader) ([]Bar, error) {
	rows, err := read(name, r)
	if err != nil {
		return nil, err
	}
	bars := make([]Bar, len(rows))
	for i, row := range rows {
		bars[i] = row.bar
	}
	return bars, nil
}

type row struct {
	bar  Bar
	file string
	line int
}

func read(name string, r io.Reader) ([]row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var rows []row
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &ParseError{File: name, Line: pe.Line, Msg: pe.Err.Error()}
			}
			return nil, fmt.Errorf("marketdata: read %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if first && len(rec) > 0 && strings.TrimSpace(rec[0]) == "open_time" {
			continue
		}
		b, msg := parseRow(rec)
		if msg != "" {
			return nil, &ParseError{File: name, Line: line, Msg: msg}
		}
		if n := len(rows); n > 0 {
			if msg := order(rows[n-1].bar.Open, b.Open, rows[n-1].line); msg != "" {
				return nil, &ParseError{File: name, Line: line, Msg: msg}
			}
		}
		rows = append(rows, row{bar: b, file: name, line: line})
	}
}

// order describes what is wrong when cur does not follow prev, or "".
func order(prev, cur time.Time, prevLine int) string {
	switch {
	case cur.Equal(prev):
		return fmt.Sprintf("duplicate open_time %s (also at line %d)", cur.Format(time.RFC3339), prevLine)
	case cur.Before(prev):
		return fmt.Sprintf("time goes backwards: open_time %s is before %s (line %d)",
			cur.Format(time.RFC3339), prev.Format(time.RFC3339), prevLine)
	}
	return ""
}

var columnNames = [Columns]string{"open_time", "open", "high", "low", "close", "volume",
	"close_time", "quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore"}

// parseRow converts one record; a non-empty string says what is wrong.
func parseRow(rec []string) (Bar, string) {
	var b Bar
	if len(rec) != Columns {
		return b, fmt.Sprintf("wrong column count: %d, want %d", len(rec), Columns)
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(rec[0]), 10, 64)
	if err != nil {
		return b, fmt.Sprintf("open_time %q is not an integer", rec[0])
	}
	open, msg := epoch(ts)
	if msg != "" {
		return b, msg
	}
	b.Open = open
	var dec [Columns]decimal.Decimal
	for _, i := range []int{1, 2, 3, 4, 5, 7, 9, 10} {
		d, ok := parseDecimal(rec[i])
		if !ok {
			return b, fmt.Sprintf("%s %q is not a number", columnNames[i], rec[i])
		}
		dec[i] = d
	}
	if _, err := strconv.ParseInt(strings.TrimSpace(rec[6]), 10, 64); err != nil {
		return b, fmt.Sprintf("close_time %q is not an integer", rec[6])
	}
	trades, err := strconv.ParseInt(strings.TrimSpace(rec[8]), 10, 64)
	if err != nil {
		return b, fmt.Sprintf("trades %q is not an integer", rec[8])
	}
	if trades < 0 {
		return b, fmt.Sprintf("negative trades %d", trades)
	}
	for _, i := range []int{5, 7, 9, 10} {
		if dec[i].Sign() < 0 {
			return b, fmt.Sprintf("negative %s %s", columnNames[i], dec[i])
		}
	}
	if dec[2].LessThan(dec[3]) {
		return b, fmt.Sprintf("high %s < low %s", dec[2], dec[3])
	}
	b.OpenPx, b.High, b.Low, b.Close = dec[1], dec[2], dec[3], dec[4]
	b.Volume, b.QuoteVolume, b.Trades = dec[5], dec[7], trades
	return b, ""
}

// epoch reads open_time in ms or µs, telling them apart by magnitude.
func epoch(ts int64) (time.Time, string) {
	switch {
	case ts < 0 || ts >= maxMicros:
		return time.Time{}, fmt.Sprintf("open_time %d out of range", ts)
	case ts >= microThreshold:
		if ts%60_000_000 != 0 {
			return time.Time{}, fmt.Sprintf("open_time %d µs is not on a minute", ts)
		}
		return time.UnixMicro(ts).UTC(), ""
	default:
		if ts%60_000 != 0 {
			return time.Time{}, fmt.Sprintf("open_time %d ms is not on a minute", ts)
		}
		return time.UnixMilli(ts).UTC(), ""
	}
}

// parseDecimal accepts plain decimals only ([+-]digits[.digits]): exponents
// would let a hostile row force huge rescaling in later comparisons.
func parseDecimal(s string) (decimal.Decimal, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxNumberLen {
		return decimal.Decimal{}, false
	}
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return decimal.Decimal{}, false
	}
	digits, dot := 0, 0
	for _, c := range body {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dot++
		default:
			return decimal.Decimal{}, false
		}
	}
	if digits == 0 || dot > 1 {
		return decimal.Decimal{}, false
	}
	d, err := decimal.NewFromString(s)
	return d, err == nil
}

// ReadDir reads every *.csv file in dir into a Series. Bars from all files
// are merged in time order; a minute present twice is an error naming both
// places. A file that cannot be read fails the whole directory; see
// ReadDirLenient for replays that can do without a day.
func ReadDir(dir string) (*Series, error) {
	s, _, err := readDir(dir, false)
	return s, err
}

// SkippedFile is a file ReadDirLenient left out, and why.
type SkippedFile struct {
	Path string
	Err  error // a *ParseError naming the line, or the open error
}

// ReadDirLenient is ReadDir for callers that can run without some days (a
// backtest skips them): a file that cannot be opened or holds a corrupt row
// is left out whole and listed in skipped, in name order, instead of
// failing the directory. A minute present in two files is still an error,
// as it is ambiguous which one is right; so is a directory in which no file
// is readable.
func ReadDirLenient(dir string) (s *Series, skipped []SkippedFile, err error) {
	return readDir(dir, true)
}

func readDir(dir string, lenient bool) (*Series, []SkippedFile, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("marketdata: read dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("marketdata: read dir: %s is not a directory", dir)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil {
		return nil, nil, fmt.Errorf("marketdata: read dir %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("%w in %s", ErrNoFiles, dir)
	}
	sort.Strings(paths)
	var all []row
	var skipped []SkippedFile
	for _, p := range paths {
		rows, err := readPath(p)
		if err != nil {
			if !lenient {
				return nil, nil, err
			}
			skipped = append(skipped, SkippedFile{Path: p, Err: err})
			continue
		}
		all = append(all, rows...)
	}
	if len(all) == 0 {
		if len(skipped) > 0 {
			return nil, skipped, fmt.Errorf("%w in %s: every file was left out, the first for %w", ErrNoBars, dir, skipped[0].Err)
		}
		return nil, nil, fmt.Errorf("%w in %s", ErrNoBars, dir)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].bar.Open.Before(all[j].bar.Open) })
	bars := make([]Bar, len(all))
	for i, r := range all {
		if i > 0 && r.bar.Open.Equal(all[i-1].bar.Open) {
			p := all[i-1]
			return nil, skipped, &ParseError{File: r.file, Line: r.line,
				Msg: fmt.Sprintf("duplicate open_time %s (also at %s:%d)", r.bar.Open.Format(time.RFC3339), p.file, p.line)}
		}
		bars[i] = r.bar
	}
	return newSeries(bars), skipped, nil
}

func readPath(p string) ([]row, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("marketdata: %w", err)
	}
	defer f.Close()
	return read(p, f)
}
