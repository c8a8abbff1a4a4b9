// Package binance is the Binance Spot adapter over the official Go client
// github.com/adshao/go-binance/v2: instrument rules from the exchange's
// filters, depth, aggregate trades for market volume, LIMIT / LIMIT_MAKER /
// IOC orders with our client ids and FULL responses, lookup and cancel by
// client id, our trades, and the exchange's failure modes mapped onto the
// engine's: a definite refusal is a venues.RejectError, an answer we could
// not read (5xx, timeout) is "unknown" and the engine looks the order up
// before it places again, a rate limit makes the venue sit out.
package binance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	gobinance "github.com/adshao/go-binance/v2"
	"github.com/adshao/go-binance/v2/common"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// Binance's limits the adapter respects.
const (
	maxClientIDLen = 36 // newClientOrderId: ^[.A-Z:/a-z0-9_-]{1,36}$
	maxAggWindow   = time.Hour
	aggPageLimit   = 1000
	myTradesWindow = 24 * time.Hour // most between myTrades' startTime and endTime
	myTradesPage   = 1000
	testnetURL     = "https://testnet.binance.vision"
)

// Config is one Binance venue.
type Config struct {
	Name       string
	BaseURL    string // empty: Binance's production endpoint (or the testnet's)
	Testnet    bool
	APIKey     venues.Secret
	SecretKey  venues.Secret
	RecvWindow time.Duration // default 5s
	// MakerFee and TakerFee are fractions (0.001 is 10 bps); both zero
	// means the account's own rates, read from Binance.
	MakerFee, TakerFee decimal.Decimal
	HTTPClient         *http.Client
	// WallClock measures latency and clock skew in CheckKey (the
	// client library signs with the host's wall time); default clock.Wall.
	WallClock clock.Clock
	// StreamURL is the WebSocket API for the user data stream; default
	// derived from BaseURL (ws[s]://host/ws-api/v3), or Binance's.
	StreamURL string
	// StreamIdle drops a stream connection silent (no event, no ping) for
	// this long; default one minute.
	StreamIdle time.Duration
}

// Venue is a Binance Spot account for the engine. Safe for concurrent use.
type Venue struct {
	cfg  Config
	c    *gobinance.Client
	clk  clock.Clock
	wall clock.Clock
	log  zerolog.Logger

	callMu sync.Mutex // one request of the client at a time

	mu          sync.Mutex
	inst        map[string]market.Instrument
	clientIDs   map[int64]string // venue order id → our client id
	sent        map[string]bool  // client ids sent in orders
	until       time.Time        // rate limited or banned until
	untilWhy    string
	weight1m    int64 // last X-MBX-USED-WEIGHT-1M, at weightAt
	weightAt    time.Time
	weightLimit int64
	orders10s   int64 // last X-MBX-ORDER-COUNT-10S, at ordersAt
	ordersAt    time.Time
	orderLimit  int64
	stream      *userStream // nil until StartStream
}

// New returns the adapter. Nothing is sent until the first call.
func New(cfg Config, clk clock.Clock, log zerolog.Logger) (*Venue, error) {
	if cfg.Name == "" {
		return nil, errors.New("binance: venue name is required")
	}
	if cfg.APIKey.Empty() || cfg.SecretKey.Empty() {
		return nil, fmt.Errorf("binance %s: api key and secret are required", cfg.Name)
	}
	if cfg.RecvWindow == 0 {
		cfg.RecvWindow = 5 * time.Second
	}
	if cfg.StreamIdle <= 0 {
		cfg.StreamIdle = defaultStreamIdle
	}
	if cfg.RecvWindow < 0 || cfg.RecvWindow > time.Minute {
		return nil, fmt.Errorf("binance %s: recv_window %s: allowed 1ms to 60s", cfg.Name, cfg.RecvWindow)
	}
	c := gobinance.NewClient(cfg.APIKey.Reveal(), cfg.SecretKey.Reveal())
	switch {
	case cfg.BaseURL != "":
		c.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	case cfg.Testnet:
		// Set per client: the library's UseTestnet is a package global.
		c.BaseURL = testnetURL
	}
	hc := http.Client{Timeout: 10 * time.Second}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = transport{next: next}
	c.HTTPClient = &hc
	wall := cfg.WallClock
	if wall == nil {
		wall = clock.Wall{}
	}
	return &Venue{cfg: cfg, c: c, clk: clk, wall: wall, log: log.With().Str("venue", cfg.Name).Logger(),
		inst: map[string]market.Instrument{}, clientIDs: map[int64]string{}, sent: map[string]bool{},
		weightLimit: defaultWeightLimit1m, orderLimit: defaultOrderLimit10s}, nil
}

// Name returns the venue's configured name.
func (v *Venue) Name() string { return v.cfg.Name }

// MaxClientIDLen is Binance's limit on newClientOrderId.
func (v *Venue) MaxClientIDLen() int { return maxClientIDLen }

// recvWindow is the option every signed call carries.
func (v *Venue) recvWindow() gobinance.RequestOption {
	return gobinance.WithRecvWindow(v.cfg.RecvWindow.Milliseconds())
}

// Instrument reads the symbol's filters: PRICE_FILTER (tick), LOT_SIZE
// (step, minimum), NOTIONAL or MIN_NOTIONAL (minimum notional).
func (v *Venue) Instrument(ctx context.Context, symbol string) (market.Instrument, error) {
	v.mu.Lock()
	in, ok := v.inst[symbol]
	v.mu.Unlock()
	if ok {
		return in, nil
	}
	var info *gobinance.ExchangeInfo
	err := v.call(ctx, false, func(ctx context.Context) (err error) {
		info, err = v.c.NewExchangeInfoService().Symbol(symbol).Do(ctx)
		return err
	})
	if err != nil {
		return market.Instrument{}, err
	}
	v.limitsFrom(info.RateLimits)
	for _, s := range info.Symbols {
		if s.Symbol != symbol {
			continue
		}
		in, err := instrument(s, v.cfg)
		if err != nil {
			return market.Instrument{}, fmt.Errorf("binance %s: %s filters: %w", v.cfg.Name, symbol, err)
		}
		if v.cfg.MakerFee.IsZero() && v.cfg.TakerFee.IsZero() {
			if in.MakerFee, in.TakerFee, err = v.commission(ctx, symbol); err != nil {
				return market.Instrument{}, err
			}
		}
		v.mu.Lock()
		v.inst[symbol] = in
		v.mu.Unlock()
		return in, nil
	}
	return market.Instrument{}, fmt.Errorf("binance %s: %s: %w", v.cfg.Name, symbol, venues.ErrUnknownSymbol)
}

// commission reads the account's standard maker and taker rates for
// symbol (Binance's fee tier, before any BNB discount).
func (v *Venue) commission(ctx context.Context, symbol string) (maker, taker decimal.Decimal, err error) {
	var res *gobinance.CommissionRatesResponse
	err = v.call(ctx, false, func(ctx context.Context) (err error) {
		res, err = v.c.NewGetCommissionRatesService().Symbol(symbol).Do(ctx, v.recvWindow())
		return err
	})
	if err != nil {
		return maker, taker, fmt.Errorf("binance %s: commission rates: %w", v.cfg.Name, err)
	}
	maker, err1 := decimal.NewFromString(res.StandardCommission.Maker)
	taker, err2 := decimal.NewFromString(res.StandardCommission.Taker)
	if err := errors.Join(err1, err2); err != nil {
		return maker, taker, fmt.Errorf("binance %s: commission rates: %w", v.cfg.Name, err)
	}
	return maker, taker, nil
}

// limitsFrom takes the request-weight and order-count budgets exchangeInfo
// states.
func (v *Venue) limitsFrom(ls []gobinance.RateLimit) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, l := range ls {
		switch {
		case l.RateLimitType == "REQUEST_WEIGHT" && l.Interval == "MINUTE" && l.IntervalNum == 1 && l.Limit > 0:
			v.weightLimit = l.Limit
		case l.RateLimitType == "ORDERS" && l.Interval == "SECOND" && l.IntervalNum == 10 && l.Limit > 0:
			v.orderLimit = l.Limit
		}
	}
}

func instrument(s gobinance.Symbol, cfg Config) (market.Instrument, error) {
	in := market.Instrument{Symbol: s.Symbol, Base: s.BaseAsset, Quote: s.QuoteAsset,
		MakerFee: cfg.MakerFee, TakerFee: cfg.TakerFee}
	get := func(f map[string]interface{}, key string) (decimal.Decimal, error) {
		str, _ := f[key].(string)
		d, err := decimal.NewFromString(str)
		if err != nil {
			return d, fmt.Errorf("%v.%s = %q: %w", f["filterType"], key, str, err)
		}
		return d, nil
	}
	var err error
	for _, f := range s.Filters {
		switch f["filterType"] {
		case "PRICE_FILTER":
			in.Tick, err = get(f, "tickSize")
		case "LOT_SIZE":
			if in.Step, err = get(f, "stepSize"); err == nil {
				in.MinQty, err = get(f, "minQty")
			}
		case "NOTIONAL", "MIN_NOTIONAL":
			in.MinNotional, err = get(f, "minNotional")
		case "MAX_NUM_ORDERS":
			n, ok := f["maxNumOrders"].(float64)
			if !ok || n < 0 {
				err = fmt.Errorf("MAX_NUM_ORDERS.maxNumOrders = %v", f["maxNumOrders"])
			}
			in.MaxOpenOrders = int(n)
		}
		if err != nil {
			return in, err
		}
	}
	if in.Tick.Sign() <= 0 || in.Step.Sign() <= 0 {
		return in, fmt.Errorf("tick %s or step %s missing", in.Tick, in.Step)
	}
	return in, nil
}

// depthLimits are the book sizes Binance serves.
var depthLimits = []int{5, 10, 20, 50, 100, 500, 1000, 5000}

// Book returns up to depth levels per side.
func (v *Venue) Book(ctx context.Context, symbol string, depth int) (market.Book, error) {
	limit := depthLimits[len(depthLimits)-1]
	for _, l := range depthLimits {
		if l >= depth {
			limit = l
			break
		}
	}
	var res *gobinance.DepthResponse
	err := v.call(ctx, false, func(ctx context.Context) (err error) {
		res, err = v.c.NewDepthService().Symbol(symbol).Limit(limit).Do(ctx)
		return err
	})
	if err != nil {
		return market.Book{}, err
	}
	b := market.Book{Symbol: symbol, Time: v.clk.Now()}
	if b.Bids, err = levels(res.Bids, depth); err == nil {
		b.Asks, err = levels(res.Asks, depth)
	}
	if err != nil {
		return market.Book{}, fmt.Errorf("binance %s: depth: %w", v.cfg.Name, err)
	}
	return b, nil
}

func levels(ls []common.PriceLevel, depth int) ([]market.Level, error) {
	out := make([]market.Level, 0, min(len(ls), depth))
	for _, l := range ls {
		if len(out) == depth {
			break
		}
		p, err1 := decimal.NewFromString(l.Price)
		q, err2 := decimal.NewFromString(l.Quantity)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		out = append(out, market.Level{Price: p, Qty: q})
	}
	return out, nil
}

// Tape sums the aggregate trades with from < time ≤ to, in windows of at
// most an hour and pages of 1,000.
func (v *Venue) Tape(ctx context.Context, symbol string, from, to time.Time) (market.Tape, error) {
	t := market.Tape{Volume: decimal.Zero, Notional: decimal.Zero}
	start := from.Add(time.Millisecond) // startTime is inclusive
	for start.Before(to) || start.Equal(to) {
		end := start.Add(maxAggWindow - time.Millisecond)
		if end.After(to) {
			end = to
		}
		var fromID int64 = -1
		for {
			var trades []*gobinance.AggTrade
			err := v.call(ctx, false, func(ctx context.Context) (err error) {
				s := v.c.NewAggTradesService().Symbol(symbol).Limit(aggPageLimit)
				if fromID >= 0 {
					s = s.FromID(fromID)
				} else {
					s = s.StartTime(start.UnixMilli()).EndTime(end.UnixMilli())
				}
				trades, err = s.Do(ctx)
				return err
			})
			if err != nil {
				return market.Tape{}, err
			}
			done := false
			for _, tr := range trades {
				if tr.Timestamp > end.UnixMilli() {
					done = true
					break
				}
				p, err1 := decimal.NewFromString(tr.Price)
				q, err2 := decimal.NewFromString(tr.Quantity)
				if err := errors.Join(err1, err2); err != nil {
					return market.Tape{}, fmt.Errorf("binance %s: aggTrades: %w", v.cfg.Name, err)
				}
				t.Volume = t.Volume.Add(q)
				t.Notional = t.Notional.Add(p.Mul(q))
				fromID = tr.AggTradeID + 1
			}
			if done || len(trades) < aggPageLimit {
				break
			}
		}
		start = end.Add(time.Millisecond)
	}
	return t, nil
}

// Place sends a LIMIT (GTC or IOC) or LIMIT_MAKER order with our client
// id and a FULL response.
//
// Binance keeps a newClientOrderId unique among open orders only: once the
// first order is done it would take the same id again as a second order.
// The adapter refuses any id it has sent before, so a retry can never sell
// twice (across a restart the engine reconciles by client id first).
func (v *Venue) Place(ctx context.Context, req market.OrderRequest) (market.Order, []market.Fill, error) {
	in, err := v.Instrument(ctx, req.Symbol)
	if err != nil {
		return market.Order{}, nil, err
	}
	v.mu.Lock()
	used := v.sent[req.ClientID]
	v.sent[req.ClientID] = true
	v.mu.Unlock()
	if used {
		return market.Order{}, nil, fmt.Errorf("%w: %w", &venues.RejectError{Venue: v.cfg.Name, Code: "DUPLICATE",
			Reason: fmt.Sprintf("client id %s was sent before: Binance would take it again once that order is done", req.ClientID)},
			venues.ErrDuplicateClientID)
	}
	s := v.c.NewCreateOrderService().Symbol(req.Symbol).Side(side(req.Side)).
		Quantity(req.Qty.String()).Price(req.Price.String()).NewClientOrderID(req.ClientID).
		NewOrderRespType(gobinance.NewOrderRespTypeFULL)
	switch req.TIF {
	case market.PostOnly:
		s = s.Type(gobinance.OrderTypeLimitMaker)
	case market.IOC:
		s = s.Type(gobinance.OrderTypeLimit).TimeInForce(gobinance.TimeInForceTypeIOC)
	default:
		s = s.Type(gobinance.OrderTypeLimit).TimeInForce(gobinance.TimeInForceTypeGTC)
	}
	var res *gobinance.CreateOrderResponse
	err = v.call(ctx, true, func(ctx context.Context) (err error) {
		res, err = s.Do(ctx, v.recvWindow())
		return err
	})
	if err != nil {
		return market.Order{}, nil, err
	}
	o, err := v.order(res.ClientOrderID, res.OrderID, res.Symbol, res.Side, res.Price, res.OrigQuantity,
		res.ExecutedQuantity, res.CummulativeQuoteQuantity, res.Status, res.TransactTime, req.TIF)
	if err != nil {
		return market.Order{}, nil, err
	}
	fills := make([]market.Fill, 0, len(res.Fills))
	for _, f := range res.Fills {
		fl, err := v.fill(in, o, f.TradeID, f.Price, f.Quantity, f.Commission, f.CommissionAsset, false, res.TransactTime)
		if err != nil {
			return market.Order{}, nil, err
		}
		fills = append(fills, fl)
	}
	return o, fills, nil
}

// Cancel cancels by client id and returns the final state.
func (v *Venue) Cancel(ctx context.Context, symbol, clientID string) (market.Order, error) {
	var res *gobinance.CancelOrderResponse
	err := v.call(ctx, false, func(ctx context.Context) (err error) {
		res, err = v.c.NewCancelOrderService().Symbol(symbol).OrigClientOrderID(clientID).Do(ctx, v.recvWindow())
		return err
	})
	if errors.Is(err, venues.ErrUnknownOrder) {
		// Binance answers "unknown" for a cancel of a done order too.
		return v.Order(ctx, symbol, clientID)
	}
	if err != nil {
		return market.Order{}, err
	}
	return v.order(clientID, res.OrderID, res.Symbol, res.Side, res.Price, res.OrigQuantity,
		res.ExecutedQuantity, res.CummulativeQuoteQuantity, res.Status, res.TransactTime, market.GTC)
}

// Order looks an order up by client id.
func (v *Venue) Order(ctx context.Context, symbol, clientID string) (market.Order, error) {
	var res *gobinance.Order
	err := v.call(ctx, false, func(ctx context.Context) (err error) {
		res, err = v.c.NewGetOrderService().Symbol(symbol).OrigClientOrderID(clientID).Do(ctx, v.recvWindow())
		return err
	})
	if err != nil {
		return market.Order{}, err
	}
	tif := market.GTC
	switch {
	case res.Type == gobinance.OrderTypeLimitMaker:
		tif = market.PostOnly
	case res.TimeInForce == gobinance.TimeInForceTypeIOC:
		tif = market.IOC
	}
	return v.order(res.ClientOrderID, res.OrderID, res.Symbol, res.Side, res.Price, res.OrigQuantity,
		res.ExecutedQuantity, res.CummulativeQuoteQuantity, res.Status, res.Time, tif)
}

// Fills lists our trades on symbol with from < time ≤ to: from the user
// data stream when it has been complete since before from, else from REST.
func (v *Venue) Fills(ctx context.Context, symbol string, from, to time.Time) ([]market.Fill, error) {
	v.mu.Lock()
	s := v.stream
	v.mu.Unlock()
	if s != nil {
		if fills, ok := s.covered(symbol, from, to); ok {
			return fills, nil
		}
	}
	return v.restFills(ctx, symbol, from, to)
}

// restFills lists our trades from REST (myTrades): windows of at most a
// day (Binance's limit between startTime and endTime), each paged by
// fromId when a page comes back full.
func (v *Venue) restFills(ctx context.Context, symbol string, from, to time.Time) ([]market.Fill, error) {
	in, err := v.Instrument(ctx, symbol)
	if err != nil {
		return nil, err
	}
	var out []market.Fill
	for lo := from; lo.Before(to); lo = lo.Add(myTradesWindow) {
		hi := lo.Add(myTradesWindow)
		if hi.After(to) {
			hi = to
		}
		var fromID int64 = -1
		for {
			var trades []*gobinance.TradeV3
			err := v.call(ctx, false, func(ctx context.Context) (err error) {
				s := v.c.NewListTradesService().Symbol(symbol).Limit(myTradesPage)
				if fromID >= 0 {
					s = s.FromID(fromID)
				} else {
					s = s.StartTime(lo.Add(time.Millisecond).UnixMilli()).EndTime(hi.UnixMilli())
				}
				trades, err = s.Do(ctx, v.recvWindow())
				return err
			})
			if err != nil {
				return nil, err
			}
			past := false
			for _, t := range trades {
				if t.Time > hi.UnixMilli() {
					past = true
					break
				}
				f, err := v.restFill(ctx, in, symbol, t)
				if err != nil {
					return nil, err
				}
				out = append(out, f)
				fromID = t.ID + 1
			}
			if past || len(trades) < myTradesPage {
				break
			}
		}
	}
	return out, nil
}

// restFill turns one of myTrades into a fill.
func (v *Venue) restFill(ctx context.Context, in market.Instrument, symbol string, t *gobinance.TradeV3) (market.Fill, error) {
	cid, err := v.clientID(ctx, symbol, t.OrderID)
	if err != nil {
		return market.Fill{}, err
	}
	sd := gobinance.SideTypeSell
	if t.IsBuyer {
		sd = gobinance.SideTypeBuy
	}
	o := market.Order{ClientID: cid, VenueOrderID: strconv.FormatInt(t.OrderID, 10), Symbol: symbol, Side: fromSide(sd)}
	return v.fill(in, o, t.ID, t.Price, t.Quantity, t.Commission, t.CommissionAsset, t.IsMaker, t.Time)
}

// clientID returns our client id of a venue order: remembered from its
// placement or lookup, or asked of the venue (an order placed before a
// restart).
func (v *Venue) clientID(ctx context.Context, symbol string, orderID int64) (string, error) {
	v.mu.Lock()
	cid, ok := v.clientIDs[orderID]
	v.mu.Unlock()
	if ok {
		return cid, nil
	}
	var res *gobinance.Order
	err := v.call(ctx, false, func(ctx context.Context) (err error) {
		res, err = v.c.NewGetOrderService().Symbol(symbol).OrderID(orderID).Do(ctx, v.recvWindow())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("client id of order %d: %w", orderID, err)
	}
	v.mu.Lock()
	v.clientIDs[orderID] = res.ClientOrderID
	v.mu.Unlock()
	return res.ClientOrderID, nil
}

func (v *Venue) order(clientID string, id int64, symbol string, sd gobinance.SideType, price, qty, executed, quote string,
	status gobinance.OrderStatusType, at int64, tif market.TimeInForce) (market.Order, error) {
	o := market.Order{ClientID: clientID, VenueOrderID: strconv.FormatInt(id, 10), Symbol: symbol, Side: fromSide(sd),
		Status: fromStatus(status), TIF: tif, Created: time.UnixMilli(at).UTC()}
	var errs [4]error
	o.Price, errs[0] = decimal.NewFromString(price)
	o.Qty, errs[1] = decimal.NewFromString(qty)
	o.Filled, errs[2] = decimal.NewFromString(executed)
	o.Notional, errs[3] = decimal.NewFromString(quote)
	if err := errors.Join(errs[:]...); err != nil {
		return market.Order{}, fmt.Errorf("binance %s: order %s: %w", v.cfg.Name, clientID, err)
	}
	v.mu.Lock()
	v.clientIDs[id] = clientID
	v.mu.Unlock()
	return o, nil
}

func (v *Venue) fill(in market.Instrument, o market.Order, tradeID int64, price, qty, fee, feeAsset string, maker bool, at int64) (market.Fill, error) {
	f := market.Fill{Venue: v.cfg.Name, TradeID: strconv.FormatInt(tradeID, 10), OrderID: o.VenueOrderID,
		ClientID: o.ClientID, Symbol: in.Symbol, Side: o.Side, FeeAsset: feeAsset, Liquidity: market.Taker,
		Time: time.UnixMilli(at).UTC()}
	if maker {
		f.Liquidity = market.Maker
	}
	var errs [3]error
	f.Price, errs[0] = decimal.NewFromString(price)
	f.Qty, errs[1] = decimal.NewFromString(qty)
	f.Fee, errs[2] = decimal.NewFromString(fee)
	if err := errors.Join(errs[:]...); err != nil {
		return market.Fill{}, fmt.Errorf("binance %s: trade %d: %w", v.cfg.Name, tradeID, err)
	}
	return f, nil
}

func side(s market.Side) gobinance.SideType {
	if s == market.Buy {
		return gobinance.SideTypeBuy
	}
	return gobinance.SideTypeSell
}

func fromSide(s gobinance.SideType) market.Side {
	if s == gobinance.SideTypeBuy {
		return market.Buy
	}
	return market.Sell
}

func fromStatus(s gobinance.OrderStatusType) market.OrderStatus {
	switch s {
	case gobinance.OrderStatusTypeNew:
		return market.New
	case gobinance.OrderStatusTypePartiallyFilled:
		return market.PartiallyFilled
	case gobinance.OrderStatusTypeFilled:
		return market.Filled
	case gobinance.OrderStatusTypeCanceled, gobinance.OrderStatusTypePendingCancel:
		return market.Canceled
	case gobinance.OrderStatusTypeRejected:
		return market.Rejected
	case gobinance.OrderStatusTypeExpired, "EXPIRED_IN_MATCH":
		return market.Expired
	}
	return market.Rejected
}
