package configs

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

// Parse parses and validates a config; name is the file name used in
// errors. Any error is a *FieldError.
func Parse(name string, data []byte) (*Config, error) {
	pos := positions{file: name}
	f, err := parse(data)
	if err != nil {
		return nil, pos.fromYAML(err)
	}
	var docs []ast.Node
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d.Body)
		}
	}
	if len(docs) == 0 {
		return nil, pos.fieldError("", "the file is empty; see configs/examples for a complete config")
	}
	pos.body = docs[0]
	if len(docs) > 1 {
		line, col := startOf(docs[1])
		return nil, &FieldError{File: name, Line: line, Column: col, Msg: "a config file holds one YAML document; remove the second one"}
	}
	sc := scan(pos.body)
	if sc.tag != nil {
		return nil, pos.at(sc.tag.GetToken(), sc.tagPath, "YAML tags such as !!str are not supported; write the plain value")
	}
	var raw rawConfig
	if err := decode(pos.body, &raw); err != nil {
		return nil, pos.fromYAML(err)
	}
	c := &conv{pos: pos, anchors: sc.anchors}
	cfg := &Config{pos: pos}
	c.run(cfg, raw)
	c.market(cfg, raw.Market)
	c.venues(cfg, raw.Venues)
	cfg.Risk = Risk{
		KillSwitch:       c.boolean("risk.kill_switch", raw.Risk.KillSwitch),
		MaxChildNotional: c.optPositive("risk.max_child_notional", raw.Risk.MaxChildNotional, "no cap"),
	}
	c.parents(cfg, raw.Parents)
	c.service(cfg, raw.Service)
	if c.err != nil {
		return nil, c.err
	}
	return cfg, nil
}

// parse and decode call the YAML library, turning a panic inside it (it has
// had nil dereferences on odd input) into an error, so that Parse never
// panics on a user's file.
func parse(data []byte) (f *ast.File, err error) {
	defer recoverYAML(&err)
	return parser.ParseBytes(data, 0)
}

func decode(body ast.Node, raw *rawConfig) (err error) {
	defer recoverYAML(&err)
	return yaml.NodeToValue(body, raw, yaml.DisallowUnknownField())
}

func recoverYAML(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("the YAML reader failed on this file (%v); check its structure against configs/examples", r)
	}
}

// scanned is what one walk over the document finds before decoding.
type scanned struct {
	anchors map[string]ast.Node // anchor name -> value, for aliased leaves
	tag     *ast.TagNode        // the first tag, which we reject
	tagPath string
}

func scan(body ast.Node) scanned {
	s := scanned{anchors: map[string]ast.Node{}}
	ast.Walk(&s, body)
	if s.tag != nil {
		s.tagPath, _, _ = pathOf(body, "", s.tag.GetToken())
	}
	return s
}

// Visit implements ast.Visitor.
func (s *scanned) Visit(n ast.Node) ast.Visitor {
	switch v := n.(type) {
	case *ast.AnchorNode:
		if v.Name != nil {
			s.anchors[v.Name.GetToken().Value] = v.Value
		}
	case *ast.TagNode:
		if s.tag == nil {
			s.tag = v
		}
	}
	return s
}

func (c *conv) run(cfg *Config, raw rawConfig) {
	r := raw.Run
	cfg.Run = Run{
		Seed:      c.integer("run.seed", r.Seed),
		Clock:     c.oneOf("run.clock", r.Clock, DefaultClock, ClockVirtual, ClockWall),
		DataDir:   c.str("run.data_dir", r.DataDir, false),
		LogLevel:  c.oneOf("run.log_level", r.LogLevel, DefaultLogLevel, "debug", "info", "warn", "error"),
		LogFormat: c.oneOf("run.log_format", r.LogFormat, DefaultLogFormat, "console", "json"),
	}
	if cfg.Run.DataDir == "" {
		cfg.Run.DataDir = DefaultDataDir
	}

	c.nats(cfg, raw.NATS)
	c.ledger(cfg, raw.Ledger)
}

func (c *conv) market(cfg *Config, r rawMarket) {
	m := Market{
		Symbol:      c.str("market.symbol", r.Symbol, true),
		Base:        c.str("market.base", r.Base, true),
		Quote:       c.str("market.quote", r.Quote, true),
		StartPrice:  c.positive("market.start_price", r.StartPrice),
		DailyVolume: c.positive("market.daily_volume", r.DailyVolume),
	}
	var ok bool
	if m.Start, ok = c.timestamp("market.start", r.Start); !ok {
		c.fail("market.start", "missing: the market's first instant is required, e.g. 2024-10-01T00:00:00Z")
	}
	m.DailyVolatility, ok = c.dec("market.daily_volatility", r.DailyVolatility)
	switch {
	case !ok:
		c.fail("market.daily_volatility", "missing: the daily volatility is required, e.g. 0.0275 for 2.75%%")
	case m.DailyVolatility.Sign() < 0 || m.DailyVolatility.GreaterThan(decimal.NewFromInt(1)):
		c.fail("market.daily_volatility", "must be in [0, 1] (0.0275 is 2.75%% a day), got %s", m.DailyVolatility)
	}
	cfg.Market = m
}

// idPattern keeps venue names and parent ids safe inside NATS subjects and
// ledger keys.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

const idRule = "1 to 64 letters, digits, '-' or '_' (it becomes part of bus subjects and ledger keys)"

// name reads a required identifier unique among seen.
func (c *conv) name(path string, v value, what string, seen map[string]string) string {
	s := c.str(path, v, true)
	switch {
	case s == "":
	case !idPattern.MatchString(s):
		c.fail(path, "%s %q: want %s", what, s, idRule)
	case seen[s] != "":
		c.fail(path, "duplicate %s %q (first at %s)", what, s, seen[s])
	default:
		seen[s] = path
	}
	return s
}

func (c *conv) venues(cfg *Config, raws []rawVenue) {
	if len(raws) == 0 {
		c.fail("venues", "missing: at least one venue is required")
		return
	}
	seen := map[string]string{}
	total := decimal.Zero
	for i, r := range raws {
		p := fmt.Sprintf("venues[%d]", i)
		v := Venue{
			Name: c.name(p+".name", r.Name, "venue name", seen),
			Kind: c.oneOf(p+".kind", r.Kind, KindSim, KindSim, KindBinance, KindCoinbase, KindKraken),
		}
		v.Fake = c.boolean(p+".fake", r.Fake)
		if v.Kind == KindSim && v.Fake {
			c.fail(p+".fake", "only for kind binance, coinbase or kraken: a sim venue is simulated already")
		}
		if v.Simulated() {
			c.simVenue(p, r, &v)
			total = total.Add(v.Share)
			if total.GreaterThan(decimal.NewFromInt(1)) {
				c.fail(p+".share", "the shares of simulated venues add up to %s; they split one market and must sum to at most 1", total)
			}
		} else {
			c.realVenue(p, r, &v)
		}
		cfg.Venues = append(cfg.Venues, v)
	}
}

// field is a raw value and its key, in the order errors are looked for.
type field struct {
	name string
	v    value
}

// simVenue reads the rules of a venue that a sim venue stands behind, and
// refuses the real-exchange fields it cannot use.
func (c *conv) simVenue(p string, r rawVenue, v *Venue) {
	v.Share = c.fraction(p+".share", r.Share)
	v.Tick = c.positive(p+".tick", r.Tick)
	v.Step = c.positive(p+".step", r.Step)
	v.MakerFeeBps = c.fee(p+".maker_fee_bps", r.MakerFeeBps, true)
	v.TakerFeeBps = c.fee(p+".taker_fee_bps", r.TakerFeeBps, false)
	v.MinQty = c.nonNegative(p+".min_qty", r.MinQty)
	v.MinNotional = c.nonNegative(p+".min_notional", r.MinNotional)
	why := "only for a real exchange (kind binance, coinbase or kraken without fake: true)"
	if v.Fake {
		why = "not with fake: true: the in-process fake listens on loopback with credentials generated for the run"
	}
	for _, f := range []field{{"base_url", r.BaseURL}, {"testnet", r.Testnet}, {"recv_window", r.RecvWindow},
		{"api_key_env", r.APIKeyEnv}, {"api_key_file", r.APIKeyFile}, {"api_secret_env", r.APISecretEnv},
		{"api_secret_file", r.APISecretFile}, {"symbols", r.Symbols}} {
		if c.node(f.v) != nil {
			c.fail(p+"."+f.name, "%s", why)
		}
	}
}

// realVenue reads a real exchange's connection and credential sources; its
// rules come from the exchange, so the sim fields are refused.
func (c *conv) realVenue(p string, r rawVenue, v *Venue) {
	for _, f := range []field{{"share", r.Share}, {"tick", r.Tick}, {"step", r.Step}, {"min_qty", r.MinQty},
		{"min_notional", r.MinNotional}} {
		if c.node(f.v) != nil {
			c.fail(p+"."+f.name, "only for kind sim or fake: true: a real exchange states its own rules, read at start")
		}
	}
	v.FeesSet = c.node(r.MakerFeeBps) != nil || c.node(r.TakerFeeBps) != nil
	v.MakerFeeBps = c.fee(p+".maker_fee_bps", r.MakerFeeBps, true)
	v.TakerFeeBps = c.fee(p+".taker_fee_bps", r.TakerFeeBps, false)
	v.BaseURL = c.str(p+".base_url", r.BaseURL, false)
	if u := v.BaseURL; u != "" {
		pu, err := url.Parse(u)
		switch {
		case err != nil:
			c.fail(p+".base_url", "want https://host[:port] (http:// only for a local test server): it does not parse as a URL")
		case pu.User != nil:
			// The credentials are not repeated: Redacted hides the password.
			c.fail(p+".base_url", "want https://host[:port] without credentials; got %q", pu.Redacted())
		case (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "":
			c.fail(p+".base_url", "want https://host[:port] (http:// only for a local test server); got %q", u)
		}
	}
	v.Testnet = c.boolean(p+".testnet", r.Testnet)
	if v.Testnet && v.Kind != KindBinance {
		c.fail(p+".testnet", "only for kind binance; point base_url at %s's sandbox instead", v.Kind)
	}
	if d, ok := c.duration(p+".recv_window", r.RecvWindow); ok {
		if v.Kind != KindBinance {
			c.fail(p+".recv_window", "only for kind binance")
		}
		if d > time.Minute {
			c.fail(p+".recv_window", "at most 60s (Binance's limit), got %s", d)
		}
		v.RecvWindow = d
	}
	v.APIKey = c.secretSource(p, "api_key", r.APIKeyEnv, r.APIKeyFile)
	v.APISecret = c.secretSource(p, "api_secret", r.APISecretEnv, r.APISecretFile)
	v.Symbols = c.stringMap(p+".symbols", r.Symbols)
}

// envName is what an environment variable's name may be.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secretSource reads <what>_env or <what>_file: exactly one of them.
func (c *conv) secretSource(p, what string, env, file value) SecretSource {
	s := SecretSource{Env: c.str(p+"."+what+"_env", env, false), File: c.str(p+"."+what+"_file", file, false)}
	switch {
	case s.Env != "" && s.File != "":
		c.fail(p+"."+what+"_file", "give %s_env or %s_file, not both", what, what)
	case s.Env == "" && s.File == "":
		c.fail(p+"."+what+"_env", "missing: name the environment variable (%s_env) or the file (%s_file, mode 0600) that holds it; secrets never go in the config", what, what)
	case s.Env != "" && !envName.MatchString(s.Env):
		// The value is not echoed: it may be a secret pasted by mistake.
		c.fail(p+"."+what+"_env", "not an environment variable's name (letters, digits and _); the config names where the secret is, never the secret")
	}
	return s
}

// fee reads a fee in basis points; absent is 0. Only maker fees may be
// negative (a rebate).
func (c *conv) fee(path string, v value, rebate bool) decimal.Decimal {
	d, _ := c.dec(path, v)
	limit := decimal.NewFromInt(1000)
	switch {
	case d.Sign() < 0 && !rebate:
		c.fail(path, "must be >= 0 (only maker fees may be negative, as a rebate), got %s", d)
	case d.Abs().GreaterThan(limit):
		c.fail(path, "must be within ±1000 bps (10%%), got %s; fees are in basis points", d)
	}
	return d
}

// nonNegative reads an optional decimal >= 0; absent is 0.
func (c *conv) nonNegative(path string, v value) decimal.Decimal {
	d, _ := c.dec(path, v)
	if d.Sign() < 0 {
		c.fail(path, "must be >= 0, got %s", d)
	}
	return d
}

// parents reads the parent orders; none is allowed here (serve takes its
// parents from its API), run refuses a file without any.
func (c *conv) parents(cfg *Config, raws []rawParent) {
	seen := map[string]string{}
	for i, r := range raws {
		cfg.Parents = append(cfg.Parents, c.parent(cfg, fmt.Sprintf("parents[%d]", i), r, seen))
	}
}

func (c *conv) parent(cfg *Config, p string, r rawParent, seen map[string]string) Parent {
	out := Parent{
		ID:       c.name(p+".id", r.ID, "parent id", seen),
		Symbol:   c.str(p+".symbol", r.Symbol, false),
		Quantity: c.positive(p+".quantity", r.Quantity),
		Strategy: c.oneOf(p+".strategy", r.Strategy, DefaultStrategy, StrategyTWAP, StrategyVWAP, StrategyPOV, StrategyAC),
	}
	if s, ok := c.text(p+".side", r.Side, "buy or sell"); !ok {
		c.fail(p+".side", "missing: allowed values are buy, sell")
	} else if side, err := market.ParseSide(s); err != nil {
		c.fail(p+".side", "%q is not allowed; allowed values are buy, sell", s)
	} else {
		out.Side = side
	}
	switch {
	case out.Symbol == "":
		out.Symbol = cfg.Market.Symbol
	case out.Symbol != cfg.Market.Symbol:
		c.fail(p+".symbol", "%q is not the market's symbol %q; a config describes one market", out.Symbol, cfg.Market.Symbol)
	}
	c.window(cfg, p, r, &out)
	out.MaxParticipation = c.fraction(p+".max_participation", r.MaxParticipation)
	out.SlippageBandBps = c.positive(p+".slippage_band_bps", r.SlippageBandBps)
	c.limits(cfg, p, r, &out)
	out.Kill = c.boolean(p+".kill", r.Kill)
	c.parentVenues(cfg, p, r, &out)
	if c.node(r.MaxVenueShare) != nil {
		out.MaxVenueShare = c.fraction(p+".max_venue_share", r.MaxVenueShare)
	}
	c.strategy(p, r, &out)
	return out
}

// strategy reads the strategy's own fields and refuses those of others.
func (c *conv) strategy(p string, r rawParent, out *Parent) {
	if r.POV != nil {
		if out.Strategy != StrategyPOV {
			c.fail(p+".pov", "applies to strategy pov only; this parent's strategy is %s", out.Strategy)
		}
		out.POV.Rate = c.openFraction(p+".pov.rate", r.POV.Rate, true)
		out.POV.MinRate = c.openFraction(p+".pov.min_rate", r.POV.MinRate, false)
		out.POV.MaxRate = c.openFraction(p+".pov.max_rate", r.POV.MaxRate, false)
		if out.POV.MinRate.IsZero() {
			out.POV.MinRate = out.POV.Rate
		}
		if out.POV.MaxRate.IsZero() {
			out.POV.MaxRate = out.POV.Rate
		}
		switch {
		case out.POV.MinRate.GreaterThan(out.POV.Rate):
			c.fail(p+".pov.min_rate", "%s is above rate %s; allowed: min_rate ≤ rate ≤ max_rate", out.POV.MinRate, out.POV.Rate)
		case out.POV.MaxRate.LessThan(out.POV.Rate):
			c.fail(p+".pov.max_rate", "%s is below rate %s; allowed: min_rate ≤ rate ≤ max_rate", out.POV.MaxRate, out.POV.Rate)
		case out.POV.MaxRate.GreaterThan(out.MaxParticipation):
			c.fail(p+".pov.max_rate", "%s is above max_participation %s, which caps every child anyway", out.POV.MaxRate, out.MaxParticipation)
		}
	} else if out.Strategy == StrategyPOV {
		c.fail(p+".strategy", "strategy pov needs a pov section, e.g. pov: {rate: 0.05, max_rate: 0.10}")
	}
	switch {
	case r.AC != nil && out.Strategy != StrategyAC:
		c.fail(p+".ac", "applies to strategy ac only; this parent's strategy is %s", out.Strategy)
	case r.AC != nil:
		out.ACLambda = c.positive(p+".ac.lambda", r.AC.Lambda)
	case out.Strategy == StrategyAC:
		c.fail(p+".strategy", "strategy ac needs its risk aversion, e.g. ac: {lambda: 0.00000001}")
	}
	if c.node(r.VolumeCurve) == nil {
		return
	}
	if out.Strategy != StrategyVWAP {
		c.fail(p+".volume_curve", "applies to strategy vwap only; this parent's strategy is %s", out.Strategy)
		return
	}
	out.VolumeCurve = c.decimals(p+".volume_curve", r.VolumeCurve)
	if c.err != nil {
		return
	}
	if len(out.VolumeCurve) != 24 {
		c.fail(p+".volume_curve", "has %d weights; give 24, one per UTC hour from 00:00", len(out.VolumeCurve))
		return
	}
	sum := decimal.Zero
	for i, w := range out.VolumeCurve {
		if w.Sign() < 0 {
			c.fail(fmt.Sprintf("%s.volume_curve[%d]", p, i), "must be >= 0, got %s", w)
		}
		sum = sum.Add(w)
	}
	if sum.Sign() <= 0 {
		c.fail(p+".volume_curve", "weights sum to %s; at least one hour must trade", sum)
	}
}

// openFraction reads a decimal in (0, 1); absent is zero, or an error when
// required.
func (c *conv) openFraction(path string, v value, required bool) decimal.Decimal {
	d, ok := c.dec(path, v)
	switch {
	case c.err != nil:
	case !ok && required:
		c.fail(path, "missing: a fraction of market volume in (0, 1) is required, e.g. 0.05")
	case ok && (d.Sign() <= 0 || !d.LessThan(decimal.NewFromInt(1))):
		c.fail(path, "must be in (0, 1), got %s", d)
	}
	return d
}

// window reads start, end or duration, and the slicing intervals.
func (c *conv) window(cfg *Config, p string, r rawParent, out *Parent) {
	var ok bool
	if out.Start, ok = c.timestamp(p+".start", r.Start); !ok {
		c.fail(p+".start", "missing: the parent's start time is required, e.g. 2024-10-01T08:00:00Z")
	} else if out.Start.Before(cfg.Market.Start) {
		c.fail(p+".start", "%s is before market.start %s; the market has no prices then",
			out.Start.Format(timeFormat), cfg.Market.Start.Format(timeFormat))
	}
	d, hasDur := c.duration(p+".duration", r.Duration)
	end, hasEnd := c.timestamp(p+".end", r.End)
	switch {
	case hasDur && hasEnd:
		c.fail(p+".end", "give either duration or end, not both")
	case !hasDur && !hasEnd:
		c.fail(p+".duration", "missing: give duration (e.g. 8h) or end (an RFC 3339 time), exactly one of them")
	case hasDur:
		out.Duration, out.End = d, out.Start.Add(d)
	case !end.After(out.Start):
		c.fail(p+".end", "end %s must be after start %s", end.Format(timeFormat), out.Start.Format(timeFormat))
	default:
		out.End, out.Duration = end, end.Sub(out.Start)
	}
	if out.SliceInterval, ok = c.duration(p+".slice_interval", r.SliceInterval); !ok {
		out.SliceInterval = DefaultSliceInterval
	}
	if out.Duration > 0 && out.SliceInterval > out.Duration {
		c.fail(p+".slice_interval", "%s is longer than the parent's window of %s", out.SliceInterval, out.Duration)
	}
	if out.ParticipationWindow, ok = c.duration(p+".participation_window", r.ParticipationWindow); !ok {
		out.ParticipationWindow = out.SliceInterval
	}
}

const timeFormat = "2006-01-02T15:04:05Z07:00"

// limits reads the price limit for the parent's side and the child cap.
func (c *conv) limits(cfg *Config, p string, r rawParent, out *Parent) {
	out.FloorPrice = c.optPositive(p+".floor_price", r.FloorPrice, "no floor")
	out.CeilingPrice = c.optPositive(p+".ceiling_price", r.CeilingPrice, "no ceiling")
	switch {
	case out.Side == market.Buy && !out.FloorPrice.IsZero():
		c.fail(p+".floor_price", "floor_price applies to sells only; a buy is limited by ceiling_price")
	case out.Side == market.Sell && !out.CeilingPrice.IsZero():
		c.fail(p+".ceiling_price", "ceiling_price applies to buys only; a sell is limited by floor_price")
	}
	out.MaxChildNotional = c.optPositive(p+".max_child_notional", r.MaxChildNotional, "risk.max_child_notional")
	if out.MaxChildNotional.IsZero() {
		out.MaxChildNotional = cfg.Risk.MaxChildNotional
	}
}

// parentVenues reads the venues a parent may use; absent means all.
func (c *conv) parentVenues(cfg *Config, p string, r rawParent, out *Parent) {
	known := make([]string, len(cfg.Venues))
	for i, v := range cfg.Venues {
		known[i] = v.Name
	}
	if c.node(r.Venues) == nil {
		out.Venues = known
		return
	}
	out.Venues = c.names(p+".venues", r.Venues)
	if c.err == nil && len(out.Venues) == 0 {
		c.fail(p+".venues", "empty: list at least one venue, or leave it out to use all of them")
	}
	for j, name := range out.Venues {
		vp := fmt.Sprintf("%s.venues[%d]", p, j)
		switch {
		case !slices.Contains(known, name):
			c.fail(vp, "unknown venue %q; configured venues are %s", name, strings.Join(known, ", "))
		case slices.Index(out.Venues, name) < j:
			c.fail(vp, "venue %q is listed twice", name)
		}
	}
}

// service reads the service section (blockexec serve).
func (c *conv) service(cfg *Config, r rawService) {
	s := Service{
		Listen:        c.str("service.listen", r.Listen, false),
		KeysFile:      c.str("service.keys_file", r.KeysFile, false),
		TLSCert:       c.str("service.tls_cert_file", r.TLSCert, false),
		TLSKey:        c.str("service.tls_key_file", r.TLSKey, false),
		NATSAPI:       c.boolean("service.nats_api", r.NATSAPI),
		MaxBody:       int(c.integer("service.max_body_bytes", r.MaxBody)),
		MetricsListen: c.str("service.metrics_listen", r.MetricsListen, false),
		Record:        c.booleanOr("service.record", r.Record, true),
	}
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		c.fail("service.listen", "want host:port such as 127.0.0.1:8480, got %q", s.Listen)
	}
	if s.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(s.MetricsListen); err != nil {
			c.fail("service.metrics_listen", "want host:port such as 127.0.0.1:9464 (or leave it out: /metrics on listen), got %q", s.MetricsListen)
		} else if s.MetricsListen == s.Listen {
			c.fail("service.metrics_listen", "%s is service.listen; give /metrics a listener of its own", s.MetricsListen)
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		c.fail("service.tls_cert_file", "give both tls_cert_file and tls_key_file for TLS, or neither")
	}
	switch {
	case s.MaxBody < 0:
		c.fail("service.max_body_bytes", "must be >= 0 (0: 64 KiB), got %d", s.MaxBody)
	case s.MaxBody > 16<<20:
		c.fail("service.max_body_bytes", "at most 16 MiB, got %d", s.MaxBody)
	}
	if !s.Record && cfg.NATS.URL == "" {
		c.fail("service.record", "false needs nats.url: the embedded server is reachable from serve's process only, "+
			"so nothing else could record its fills; leave record out, or share a NATS server where blockexec recorder runs")
	}
	cfg.Service = s
}
