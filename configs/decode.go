package configs

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/shopspring/decimal"
)

// value captures one YAML value as the parser saw it. The strict decoder
// checks the keys and the shape of the mappings and lists; every leaf is then
// read by the converter from its source text, so that decimals never pass
// through float64 and every error can point at its line.
type value struct{ n ast.Node }

// UnmarshalYAML keeps the node; see value.
func (v *value) UnmarshalYAML(n ast.Node) error {
	v.n = n
	return nil
}

// The raw structs mirror the schema one to one; their yaml tags are the
// allowed keys (the decoder rejects others).
type rawConfig struct {
	Run     rawRun      `yaml:"run"`
	NATS    rawNATS     `yaml:"nats"`
	Ledger  rawLedger   `yaml:"ledger"`
	Market  rawMarket   `yaml:"market"`
	Venues  []rawVenue  `yaml:"venues"`
	Risk    rawRisk     `yaml:"risk"`
	Service rawService  `yaml:"service"`
	Parents []rawParent `yaml:"parents"`
}

type rawRun struct {
	Seed      value `yaml:"seed"`
	Clock     value `yaml:"clock"`
	DataDir   value `yaml:"data_dir"`
	LogLevel  value `yaml:"log_level"`
	LogFormat value `yaml:"log_format"`
}

type rawNATS struct {
	URL          value `yaml:"url"`
	CredsFile    value `yaml:"creds_file"`
	NKeySeedFile value `yaml:"nkey_seed_file"`
	TLSCAFile    value `yaml:"tls_ca_file"`
	TLSCertFile  value `yaml:"tls_cert_file"`
	TLSKeyFile   value `yaml:"tls_key_file"`
	Replicas     value `yaml:"replicas"`
}

type rawLedger struct {
	Driver value `yaml:"driver"`
	DSN    value `yaml:"dsn"`
}

type rawMarket struct {
	Symbol          value `yaml:"symbol"`
	Base            value `yaml:"base"`
	Quote           value `yaml:"quote"`
	StartPrice      value `yaml:"start_price"`
	Start           value `yaml:"start"`
	DailyVolume     value `yaml:"daily_volume"`
	DailyVolatility value `yaml:"daily_volatility"`
}

type rawVenue struct {
	Name          value `yaml:"name"`
	Kind          value `yaml:"kind"`
	Fake          value `yaml:"fake"`
	Share         value `yaml:"share"`
	MakerFeeBps   value `yaml:"maker_fee_bps"`
	TakerFeeBps   value `yaml:"taker_fee_bps"`
	Tick          value `yaml:"tick"`
	Step          value `yaml:"step"`
	MinQty        value `yaml:"min_qty"`
	MinNotional   value `yaml:"min_notional"`
	BaseURL       value `yaml:"base_url"`
	Testnet       value `yaml:"testnet"`
	RecvWindow    value `yaml:"recv_window"`
	APIKeyEnv     value `yaml:"api_key_env"`
	APIKeyFile    value `yaml:"api_key_file"`
	APISecretEnv  value `yaml:"api_secret_env"`
	APISecretFile value `yaml:"api_secret_file"`
	Symbols       value `yaml:"symbols"`
}

type rawService struct {
	Listen        value `yaml:"listen"`
	KeysFile      value `yaml:"keys_file"`
	TLSCert       value `yaml:"tls_cert_file"`
	TLSKey        value `yaml:"tls_key_file"`
	NATSAPI       value `yaml:"nats_api"`
	MaxBody       value `yaml:"max_body_bytes"`
	MetricsListen value `yaml:"metrics_listen"`
	Record        value `yaml:"record"`
}

type rawRisk struct {
	KillSwitch       value `yaml:"kill_switch"`
	MaxChildNotional value `yaml:"max_child_notional"`
}

type rawParent struct {
	ID                  value   `yaml:"id"`
	Side                value   `yaml:"side"`
	Symbol              value   `yaml:"symbol"`
	Quantity            value   `yaml:"quantity"`
	Strategy            value   `yaml:"strategy"`
	Start               value   `yaml:"start"`
	Duration            value   `yaml:"duration"`
	End                 value   `yaml:"end"`
	SliceInterval       value   `yaml:"slice_interval"`
	ParticipationWindow value   `yaml:"participation_window"`
	MaxParticipation    value   `yaml:"max_participation"`
	SlippageBandBps     value   `yaml:"slippage_band_bps"`
	FloorPrice          value   `yaml:"floor_price"`
	CeilingPrice        value   `yaml:"ceiling_price"`
	MaxChildNotional    value   `yaml:"max_child_notional"`
	Kill                value   `yaml:"kill"`
	Venues              value   `yaml:"venues"`
	MaxVenueShare       value   `yaml:"max_venue_share"`
	POV                 *rawPOV `yaml:"pov"`
	AC                  *rawAC  `yaml:"ac"`
	VolumeCurve         value   `yaml:"volume_curve"`
}

type rawAC struct {
	Lambda value `yaml:"lambda"`
}

type rawPOV struct {
	Rate    value `yaml:"rate"`
	MinRate value `yaml:"min_rate"`
	MaxRate value `yaml:"max_rate"`
}

// conv converts raw values to typed ones. The first failure sticks: later
// calls return zero values and the caller returns conv.err.
type conv struct {
	pos     positions
	anchors map[string]ast.Node
	err     *FieldError
}

func (c *conv) fail(path, format string, args ...any) {
	if c.err == nil {
		c.err = c.pos.fieldError(path, fmt.Sprintf(format, args...))
	}
}

// node resolves aliases and anchors; nil means the key is absent or null.
func (c *conv) node(v value) ast.Node {
	n := v.n
	for range 64 {
		switch a := n.(type) {
		case *ast.AliasNode:
			if a.Value == nil {
				return nil
			}
			n = c.anchors[a.Value.GetToken().Value]
		case *ast.AnchorNode:
			n = a.Value
		case *ast.NullNode:
			return nil
		default:
			return n
		}
	}
	return nil
}

// text returns a scalar's source text; ok is false when it is absent, null
// or the empty string. Quoted strings give their content; numbers give the
// digits as written.
func (c *conv) text(path string, v value, want string) (s string, ok bool) {
	switch n := c.node(v).(type) {
	case nil:
		return "", false
	case *ast.StringNode:
		return n.Value, n.Value != ""
	case *ast.IntegerNode, *ast.FloatNode:
		return n.GetToken().Value, true
	default:
		c.fail(path, "want %s, got %s", want, kindOf(n))
		return "", false
	}
}

// str reads a string; required ones fail when absent.
func (c *conv) str(path string, v value, required bool) string {
	s, ok := c.text(path, v, "a string")
	if !ok && required {
		c.fail(path, "missing: a value is required")
	}
	return s
}

// plainDecimal is what decimal fields accept: digits with an optional sign
// and decimal point. Exponents ("1e-8"), separators and hex are rejected so
// that what a treasurer reads is what the engine trades.
var plainDecimal = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// dec reads a decimal from its source text, exactly; ok is false when the
// value is absent, null or "".
func (c *conv) dec(path string, v value) (d decimal.Decimal, ok bool) {
	const want = `a decimal such as 0.1 or "63000"`
	s, ok := c.text(path, v, want)
	if !ok {
		return decimal.Zero, false
	}
	if len(s) > 64 || !plainDecimal.MatchString(s) {
		c.fail(path, "want %s written as plain digits (no exponent, separators or units), got %q", want, s)
		return decimal.Zero, false
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		c.fail(path, "want %s, got %q", want, s)
		return decimal.Zero, false
	}
	return d, true
}

// positive reads a required decimal that must be > 0.
func (c *conv) positive(path string, v value) decimal.Decimal {
	d, ok := c.dec(path, v)
	switch {
	case c.err != nil:
	case !ok:
		c.fail(path, "missing: a positive decimal is required")
	case d.Sign() <= 0:
		c.fail(path, "must be > 0, got %s", d)
	}
	return d
}

// optPositive reads an optional decimal that must be > 0 when given; zero
// means not set.
func (c *conv) optPositive(path string, v value, unset string) decimal.Decimal {
	d, ok := c.dec(path, v)
	if ok && d.Sign() <= 0 {
		c.fail(path, "must be > 0, got %s (leave it empty for %s)", d, unset)
	}
	return d
}

// fraction reads a required decimal in (0, 1].
func (c *conv) fraction(path string, v value) decimal.Decimal {
	d, ok := c.dec(path, v)
	switch {
	case c.err != nil:
	case !ok:
		c.fail(path, "missing: a fraction in (0, 1] is required, e.g. 0.10")
	case d.Sign() <= 0 || d.GreaterThan(decimal.NewFromInt(1)):
		c.fail(path, "must be in (0, 1], got %s", d)
	}
	return d
}

// duration reads a Go duration such as 8h or 1h30m.
func (c *conv) duration(path string, v value) (time.Duration, bool) {
	const want = "a duration such as 8h, 90s or 1h30m"
	s, ok := c.text(path, v, want)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.fail(path, "want %s, got %q", want, s)
		return 0, false
	}
	if d <= 0 {
		c.fail(path, "must be > 0, got %s", s)
	}
	return d, true
}

// timestamp reads an RFC 3339 time.
func (c *conv) timestamp(path string, v value) (time.Time, bool) {
	const want = "an RFC 3339 time such as 2024-10-01T08:00:00Z"
	s, ok := c.text(path, v, want)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		c.fail(path, "want %s, got %q", want, s)
		return time.Time{}, false
	}
	return t, true
}

// boolean reads true or false; absent is false.
func (c *conv) boolean(path string, v value) bool { return c.booleanOr(path, v, false) }

// booleanOr reads true or false; absent is def.
func (c *conv) booleanOr(path string, v value, def bool) bool {
	switch n := c.node(v).(type) {
	case nil:
		return def
	case *ast.BoolNode:
		return n.Value
	default:
		c.fail(path, "want true or false, got %s", kindOf(n))
		return false
	}
}

// integer reads a whole number written in decimal; absent is 0.
func (c *conv) integer(path string, v value) int64 {
	switch n := c.node(v).(type) {
	case nil:
		return 0
	case *ast.IntegerNode:
		i, err := strconv.ParseInt(n.GetToken().Value, 10, 64)
		if err != nil {
			c.fail(path, "want a whole number between %d and %d, got %s", int64(-1<<63), int64(1<<63-1), n.GetToken().Value)
		}
		return i
	default:
		c.fail(path, "want a whole number such as 7, got %s", kindOf(n))
		return 0
	}
}

// oneOf reads a string that must be one of allowed (case-insensitive, stored
// in lower case); absent gives def.
func (c *conv) oneOf(path string, v value, def string, allowed ...string) string {
	s, ok := c.text(path, v, "one of "+strings.Join(allowed, ", "))
	if !ok {
		return def
	}
	if l := strings.ToLower(s); slices.Contains(allowed, l) {
		return l
	}
	c.fail(path, "%q is not allowed; allowed values are %s", s, strings.Join(allowed, ", "))
	return def
}

// names reads a list of strings (a YAML sequence).
func (c *conv) names(path string, v value) []string {
	n := c.node(v)
	if n == nil {
		return nil
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		c.fail(path, "want a list such as [simA, simB], got %s", kindOf(n))
		return nil
	}
	out := make([]string, 0, len(seq.Values))
	for i, e := range seq.Values {
		p := fmt.Sprintf("%s[%d]", path, i)
		out = append(out, c.str(p, value{e}, true))
	}
	return out
}

// decimals reads a list of decimals (a YAML sequence).
func (c *conv) decimals(path string, v value) []decimal.Decimal {
	n := c.node(v)
	if n == nil {
		return nil
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		c.fail(path, "want a list of decimals such as [4.0, 3.6, ...], got %s", kindOf(n))
		return nil
	}
	out := make([]decimal.Decimal, 0, len(seq.Values))
	for i, e := range seq.Values {
		p := fmt.Sprintf("%s[%d]", path, i)
		d, ok := c.dec(p, value{e})
		if !ok && c.err == nil {
			c.fail(p, "missing: a decimal is required")
		}
		out = append(out, d)
	}
	return out
}

// stringMap reads a mapping of strings to strings (a YAML mapping).
func (c *conv) stringMap(path string, v value) map[string]string {
	n := c.node(v)
	if n == nil {
		return nil
	}
	mvs := mappingValues(n)
	if _, ok := n.(*ast.MappingNode); !ok && len(mvs) == 0 {
		c.fail(path, "want a mapping such as {BTCUSDT: BTC-USDT}, got %s", kindOf(n))
		return nil
	}
	out := map[string]string{}
	for _, mv := range mvs {
		k := keyText(mv.Key)
		out[k] = c.str(join(path, k), value{mv.Value}, true)
	}
	return out
}
