// Package configs reads the YAML file a treasury writes to describe a run:
// the synthetic market, the venues, risk limits and the parent orders to
// execute. Parsing is strict (unknown keys are errors), decimals are read
// exactly from the source text, and every error is a *FieldError naming the
// file, line, column and field.
//
// Decimals may be YAML strings ("63000") or numbers (0.10); either way the
// digits are taken as written, never through float64. Only plain notation
// is accepted: exponents (1e-8), digit separators and units are rejected so
// that the file reads exactly as the engine trades. Durations use Go syntax
// (8h, 90s, 1h30m) and times RFC 3339.
//
// Relative paths (run.data_dir, ledger.dsn) are relative to the process's
// current directory, not to the config file, so that `blockexec run -c
// FILE` writes its state where it is started, like most CLIs.
package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

// Defaults applied when a field is absent.
const (
	DefaultDataDir       = "./data"
	DefaultClock         = ClockVirtual
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "console"
	DefaultLedgerDriver  = "sqlite"
	DefaultStrategy      = StrategyTWAP
	DefaultSliceInterval = time.Minute
	DefaultListen        = "127.0.0.1:8480"
)

// Allowed values of the enumerated string fields.
const (
	ClockVirtual = "virtual" // simulated time, as fast as the CPU allows
	ClockWall    = "wall"    // real time
	KindSim      = "sim"     // the simulated venue
	KindBinance  = "binance" // Binance Spot
	KindCoinbase = "coinbase"
	KindKraken   = "kraken"

	StrategyTWAP = "twap" // time-weighted
	StrategyVWAP = "vwap" // volume-weighted, on an intraday curve
	StrategyPOV  = "pov"  // a percentage of market volume as it prints
	StrategyAC   = "ac"   // the Almgren–Chriss optimal trajectory
)

// Config is one parsed and validated config file. The exported fields are
// plain data; the unexported ones remember the source so that later errors
// (say, an engine rejection) can be placed on a line with FieldError.
type Config struct {
	Run     Run
	NATS    NATS
	Ledger  Ledger
	Market  Market
	Venues  []Venue
	Risk    Risk
	Parents []Parent
	Service Service

	pos        positions
	dsnDefault bool // Ledger.DSN was derived from Run.DataDir
}

// Run holds process-wide settings.
type Run struct {
	Seed      int64  // seeds the simulated market and venues
	Clock     string // "virtual" (default) or "wall"
	DataDir   string // default "./data"; relative to the current directory
	LogLevel  string // debug, info (default), warn, error
	LogFormat string // console (default) or json
}

// NATS says where the message bus is and how to log in to it. The files
// are checked when the config is read: they exist and can be read, and the
// secret ones (creds, seed, TLS key) only by their owner.
type NATS struct {
	URL          string // empty: run an embedded server storing under NATSStoreDir; user:password@ allowed, never shown
	CredsFile    string // a .creds file (user JWT and seed); not with NKeySeedFile
	NKeySeedFile string // a file holding an nkey seed (SU…)
	TLSCAFile    string // PEM CAs that sign the server's certificate; empty: the system's
	TLSCertFile  string // PEM client certificate, with TLSKeyFile
	TLSKeyFile   string
	// Replicas is how many servers of a cluster keep each stream and
	// bucket (fills, events, checkpoints, heartbeats): 1 (default) to 5;
	// the embedded server is one server, so 1.
	Replicas int
}

// Ledger says where fills and parent states are recorded.
type Ledger struct {
	Driver string // LedgerSQLite (default) or LedgerPostgres
	DSN    string // sqlite: the file, default <data_dir>/ledger.db; postgres: a URL or key=value DSN, required
}

// Market describes the synthetic market behind the sim venues.
type Market struct {
	Symbol          string
	Base, Quote     string
	StartPrice      decimal.Decimal // > 0
	Start           time.Time
	DailyVolume     decimal.Decimal // base units traded per day, all venues; > 0
	DailyVolatility decimal.Decimal // daily standard deviation of returns, in [0, 1]
}

// Venue is one trading venue: a sim venue and its order rules, or a real
// exchange (binance, coinbase, kraken) and where its credentials are.
type Venue struct {
	Name string // unique; letters, digits, '-' and '_'
	Kind string // sim, binance, coinbase or kraken
	// Fake serves a real kind's protocol from an in-process fake exchange
	// over a sim venue of this market (with the sim fields below), so the
	// real adapter runs end to end on loopback. Credentials are generated.
	Fake        bool
	Share       decimal.Decimal // sim and fake: fraction of market volume and depth, (0, 1]
	MakerFeeBps decimal.Decimal // may be negative (a rebate); real venues: overrides the account's tier when set
	TakerFeeBps decimal.Decimal // >= 0
	FeesSet     bool            // maker_fee_bps or taker_fee_bps was written
	Tick        decimal.Decimal // sim and fake: price increment, > 0
	Step        decimal.Decimal // sim and fake: quantity increment, > 0
	MinQty      decimal.Decimal // >= 0
	MinNotional decimal.Decimal // >= 0, in quote units
	// Real venues.
	BaseURL    string            // empty: the exchange's production API
	Testnet    bool              // binance: testnet.binance.vision
	RecvWindow time.Duration     // binance: signed requests' recvWindow; zero = 5s
	APIKey     SecretSource      // the API key (Coinbase: the key name)
	APISecret  SecretSource      // the secret (Coinbase: the EC private key, PEM)
	Symbols    map[string]string // engine symbol → the venue's name for it
}

// Real reports whether the venue is a real exchange's adapter (fake or not).
func (v Venue) Real() bool { return v.Kind != KindSim }

// Simulated reports whether a sim venue trades behind the venue: kind sim,
// or a real kind served by an in-process fake.
func (v Venue) Simulated() bool { return v.Kind == KindSim || v.Fake }

// SecretSource says where a credential is read from: an environment
// variable or a file that only its owner can read. Never the config itself.
type SecretSource struct {
	Env  string
	File string
}

// Service is how blockexec serve listens.
type Service struct {
	Listen   string // host:port of the HTTP API; default DefaultListen
	KeysFile string // the API keys (mode 0600); required by serve
	TLSCert  string // both or neither: HTTPS
	TLSKey   string
	NATSAPI  bool // also serve the operations on blockexec.api.* over the config's NATS
	MaxBody  int  // request body limit in bytes; zero: 64 KiB
	// MetricsListen is host:port of a listener serving /metrics alone, which
	// the API's listener then does not; empty: /metrics on Listen, unsigned.
	MetricsListen string
	// Record runs a recorder in serve (default true); false leaves the
	// ledger to blockexec recorder processes on the same nats.url.
	Record bool
}

// Risk holds the global limits.
type Risk struct {
	KillSwitch       bool            // stop all parents
	MaxChildNotional decimal.Decimal // default cap per child order; zero = none
}

// Parent is one parent order: a quantity to work over a time window.
type Parent struct {
	ID                  string // unique; letters, digits, '-' and '_'
	Side                market.Side
	Symbol              string // default and only allowed value: Market.Symbol
	Quantity            decimal.Decimal
	Strategy            string // twap (default), vwap, pov or ac
	Start, End          time.Time
	Duration            time.Duration // End - Start, whichever was written
	SliceInterval       time.Duration // default 1m
	ParticipationWindow time.Duration // default SliceInterval
	MaxParticipation    decimal.Decimal
	SlippageBandBps     decimal.Decimal
	FloorPrice          decimal.Decimal // sell only; zero = none
	CeilingPrice        decimal.Decimal // buy only; zero = none
	MaxChildNotional    decimal.Decimal // this parent's own cap; zero = Risk.MaxChildNotional
	Kill                bool
	Venues              []string          // default every venue, in config order
	MaxVenueShare       decimal.Decimal   // most of a slice one venue may take, (0, 1]; zero = no cap
	POV                 POV               // strategy pov only
	ACLambda            decimal.Decimal   // strategy ac: risk aversion λ > 0
	VolumeCurve         []decimal.Decimal // strategy vwap: 24 hourly weights (UTC); empty = the default curve
}

// POV are the rates of a percentage-of-volume parent, fractions of market
// volume in (0, 1).
type POV struct {
	Rate    decimal.Decimal // required with strategy pov
	MinRate decimal.Decimal // default Rate: how far it may slow down when ahead
	MaxRate decimal.Decimal // default Rate: how far it may speed up at the end
}

// Load reads and parses the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FieldError{File: path, Line: 1, Column: 1, Msg: fmt.Sprintf("cannot read the config: %v", err)}
	}
	return Parse(path, data)
}

// NATSStoreDir is where the embedded NATS server keeps its streams.
func (c *Config) NATSStoreDir() string { return filepath.Join(c.Run.DataDir, "nats") }

// LedgerDSN is the ledger's data source: ledger.dsn, or <data_dir>/ledger.db.
// It may hold a password: show LedgerName instead.
func (c *Config) LedgerDSN() string { return c.Ledger.DSN }

// SetDataDir overrides run.data_dir (the CLI's --data-dir), moving the
// ledger with it unless ledger.dsn was given explicitly.
func (c *Config) SetDataDir(dir string) {
	c.Run.DataDir = dir
	if c.dsnDefault {
		c.Ledger.DSN = filepath.Join(dir, "ledger.db")
	}
}

// ParentPath returns the config path of a parent's field, e.g.
// ParentPath("unwind-1", "floor_price") = "parents[0].floor_price", or of the
// parent itself when field is empty. An unknown id gives "parents".
func (c *Config) ParentPath(id, field string) string {
	for i, p := range c.Parents {
		if p.ID == id {
			if field == "" {
				return fmt.Sprintf("parents[%d]", i)
			}
			return fmt.Sprintf("parents[%d].%s", i, field)
		}
	}
	return "parents"
}

// FieldError returns a *FieldError for path positioned at that field in
// the source, or at its nearest present ancestor. Callers use it to report
// problems found after loading (an engine rejection, a ledger clash) on the
// line that caused them.
func (c *Config) FieldError(path, msg string) error {
	return c.pos.fieldError(path, msg)
}
