// Package kraken is the engine's adapter for Kraken's Spot REST API: pair
// rules from AssetPairs and TradeVolume, the book from Depth, the public
// tape from Trades, limit orders with a client order id (cl_ord_id) through
// AddOrder, QueryOrders, OpenOrders, ClosedOrders, QueryTrades, CancelOrder
// and TradesHistory, signed with API-Key / API-Sign and a strictly
// increasing nonce.
//
// Kraken's answers map onto the engine's errors: a refusal is a
// *venues.RejectError (or ErrWouldTake, ErrDuplicateClientID,
// ErrUnknownSymbol), an order or symbol it does not know is ErrUnknownOrder
// or ErrUnknownSymbol, and anything that leaves the outcome open (5xx,
// EService:Unavailable, a timeout, an unreadable answer, a rate limit)
// wraps ErrUnavailable. Its fake lives in krakenfake.
package kraken

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// DefaultBaseURL is Kraken's REST endpoint.
const DefaultBaseURL = "https://api.kraken.com"

// maxClientIDLen is Kraken's limit for a free-text cl_ord_id. (It also takes
// a UUID, with or without dashes, which the engine's ids are not.)
const maxClientIDLen = 18

// Config is one Kraken account.
type Config struct {
	// Name is the venue's name in the engine; required.
	Name string
	// BaseURL defaults to https://api.kraken.com.
	BaseURL string
	// APIKey and Secret are the key pair; the secret is base64 as Kraken
	// issues it. Both required.
	APIKey, Secret venues.Secret
	// Symbols maps an engine symbol (BTCUSDT) to a Kraken pair altname
	// (XBTUSDT). A symbol not mapped is found in AssetPairs by its wsname
	// with Kraken's asset names translated (XBT→BTC, XDG→DOGE).
	Symbols map[string]string
	// MakerFee and TakerFee are fractions (0.0025 is 25 bps). When both are
	// zero the key's tier is read from TradeVolume.
	MakerFee, TakerFee decimal.Decimal
	// HTTPClient defaults to a client with a 10 s timeout.
	HTTPClient *http.Client
	// AuthClock is the wall clock nonces are drawn from; default
	// clock.Wall{}.
	AuthClock clock.Clock
}

// Venue is a Kraken account seen as an engine venue. Safe for concurrent
// use.
type Venue struct {
	cfg  Config
	clk  clock.Clock // the market clock: book times, windows, pauses
	auth clock.Clock // the wall clock: nonces, key checks
	log  zerolog.Logger
	base *url.URL
	hc   *http.Client
	key  hmacKey

	// privMu holds one private request at a time, from its nonce to its
	// answer, so that nonces reach Kraken in the order they were drawn.
	privMu    sync.Mutex
	lastNonce int64

	mu        sync.Mutex
	pauseEnd  time.Time             // no request is sent before it (market clock)
	pairs     []assetPair           // AssetPairs, once read
	inst      map[string]*pairRules // by engine symbol
	txids     map[string]string     // cl_ord_id → txid of our orders
	clientIDs map[string]string     // txid → cl_ord_id
	tifs      map[string]market.TimeInForce
}

// hmacKey is the decoded secret. It prints as [REDACTED].
type hmacKey []byte

// String prints [REDACTED].
func (hmacKey) String() string { return "[REDACTED]" }

// GoString prints [REDACTED].
func (hmacKey) GoString() string { return "[REDACTED]" }

// Format prints [REDACTED] for every verb.
func (hmacKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[REDACTED]")) }

// New returns an adapter; nothing is sent until the first call. clk is the
// market clock. A config it cannot run is refused, naming the field and
// never a credential.
func New(cfg Config, clk clock.Clock, log zerolog.Logger) (*Venue, error) {
	if clk == nil {
		return nil, errors.New("kraken: a market clock is required")
	}
	if cfg.Name == "" {
		return nil, errors.New("kraken: name is required")
	}
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("kraken %s: %s: %s", cfg.Name, field, fmt.Sprintf(format, a...))
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, bad("base_url", "%q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.APIKey.Empty() {
		return nil, bad("api_key", "is required")
	}
	if cfg.Secret.Empty() {
		return nil, bad("secret", "is required")
	}
	key, err := base64.StdEncoding.DecodeString(cfg.Secret.Reveal())
	if err != nil || len(key) == 0 {
		// The decoder's error names a byte offset only; the value is never
		// printed.
		return nil, bad("secret", "is not base64 as Kraken issues it (check for a truncated or re-encoded value)")
	}
	maxFee := decimal.New(1, -2)
	for _, f := range []struct {
		name string
		v    decimal.Decimal
	}{{"maker_fee", cfg.MakerFee}, {"taker_fee", cfg.TakerFee}} {
		if f.v.IsNegative() || !f.v.LessThan(maxFee) {
			return nil, bad(f.name, "%s must be a fraction in [0, 0.01) (0.0026 is 26 bps)", f.v)
		}
	}
	symbols := make(map[string]string, len(cfg.Symbols)) // the caller's map may change under us
	for sym, alt := range cfg.Symbols {
		if sym == "" || alt == "" {
			return nil, bad("symbols", "%q → %q: both names are required", sym, alt)
		}
		symbols[sym] = alt
	}
	cfg.Symbols = symbols
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.AuthClock == nil {
		cfg.AuthClock = clock.Wall{}
	}
	return &Venue{cfg: cfg, clk: clk, auth: cfg.AuthClock, log: log.With().Str("venue", cfg.Name).Logger(),
		base: base, hc: cfg.HTTPClient, key: key, inst: map[string]*pairRules{}, txids: map[string]string{},
		clientIDs: map[string]string{}, tifs: map[string]market.TimeInForce{}}, nil
}

// Name is the venue's configured name.
func (v *Venue) Name() string { return v.cfg.Name }

// MaxClientIDLen is Kraken's limit on a free-text cl_ord_id: 18 characters.
func (v *Venue) MaxClientIDLen() int { return maxClientIDLen }

// ClientIDAllowed keeps free-text cl_ord_ids to lower-case letters and
// digits: Kraken documents free text of up to 18 characters without a
// charset, and field reports say upper case and '-' are refused, so the
// engine hashes its readable ids to this alphabet.
func (v *Venue) ClientIDAllowed(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }

// remember records one of our orders.
func (v *Venue) remember(clientID, txid string, tif market.TimeInForce) {
	if clientID == "" || txid == "" {
		return
	}
	v.mu.Lock()
	v.txids[clientID] = txid
	v.clientIDs[txid] = clientID
	if tif != 0 {
		v.tifs[txid] = tif
	}
	v.mu.Unlock()
}
