package coinbasefake

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues/fakex"
)

// serverTime answers GET /time (public): the auth clock's now.
func (s *Server) serverTime(w http.ResponseWriter, _ *http.Request) {
	now := s.o.AuthClock.Now()
	writeJSON(w, http.StatusOK, map[string]string{"iso": stamp(now),
		"epochSeconds": strconv.FormatInt(now.Unix(), 10), "epochMillis": strconv.FormatInt(now.UnixMilli(), 10)})
}

// product describes the one product, with its price and 24 h volume.
func (s *Server) product(r *http.Request) (productBody, error) {
	ctx, in := r.Context(), s.rules
	b, err := s.o.Venue.Book(ctx, in.Symbol, 1)
	if err != nil {
		return productBody{}, err
	}
	mid, _ := b.Mid()
	now := s.o.Clock.Now()
	tp, err := s.o.Venue.Tape(ctx, in.Symbol, now.Add(-24*time.Hour), now)
	if err != nil {
		return productBody{}, err
	}
	return productBody{ProductID: s.o.ProductID, Price: str(market.FloorToStep(mid, in.Tick)),
		PricePercentageChange24h: "0", Volume24h: str(tp.Volume), VolumePercentageChange24h: "0",
		BaseIncrement: str(in.Step), QuoteIncrement: str(in.Tick), QuoteMinSize: str(in.MinNotional),
		QuoteMaxSize: "100000000", BaseMinSize: str(in.MinQty), BaseMaxSize: "100000", BaseName: in.Base,
		QuoteName: in.Quote, Status: "online", ProductType: "SPOT", QuoteCurrencyID: in.Quote, BaseCurrencyID: in.Base,
		MidMarketPrice: str(mid), AliasTo: []string{}, BaseDisplaySymbol: in.Base, QuoteDisplaySymbol: in.Quote,
		PriceIncrement: str(in.Tick), DisplayName: in.Base + "/" + in.Quote, ProductVenue: "CBE"}, nil
}

// listProducts answers GET /products (product_type and product_ids filter).
func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list := []productBody{}
	typeOK := q.Get("product_type") == "" || q.Get("product_type") == "SPOT"
	idsOK := len(q["product_ids"]) == 0 || slices.Contains(q["product_ids"], s.o.ProductID)
	if typeOK && idsOK {
		p, err := s.product(r)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
			return
		}
		list = append(list, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": list, "num_products": len(list)})
}

// getProduct answers GET /products/{product_id}.
func (s *Server) getProduct(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("product_id") != s.o.ProductID {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "ProductID is invalid")
		return
	}
	p, err := s.product(r)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// productBook answers GET /product_book?product_id=&limit=.
func (s *Server) productBook(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("product_id") != s.o.ProductID {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "ProductID is invalid")
		return
	}
	depth := defaultDepth
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "limit must be a non-negative integer")
			return
		}
		if n > 0 {
			depth = n
		}
	}
	b, err := s.o.Venue.Book(r.Context(), s.rules.Symbol, depth)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
		return
	}
	conv := func(ls []market.Level) []level {
		out := make([]level, len(ls))
		for i, l := range ls {
			out[i] = level{Price: str(l.Price), Size: str(l.Qty)}
		}
		return out
	}
	body := map[string]any{"pricebook": map[string]any{"product_id": s.o.ProductID, "bids": conv(b.Bids),
		"asks": conv(b.Asks), "time": stamp(s.o.Clock.Now())}}
	if bid, ok1 := b.BestBid(); ok1 {
		if ask, ok2 := b.BestAsk(); ok2 {
			mid, _ := b.Mid()
			spread := ask.Price.Sub(bid.Price)
			body["mid_market"] = str(mid)
			body["spread_absolute"] = str(spread)
			body["spread_bps"] = str(spread.Div(mid).Mul(decimal.NewFromInt(10_000)).Round(4))
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// marketTrades answers GET /products/{product_id}/ticker?limit=&start=&end=:
// the sim's tape cut into one trade per 10 s (fakex.Trades), newest first,
// start ≤ time ≤ end (UNIX seconds), at most limit of them.
func (s *Server) marketTrades(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("product_id") != s.o.ProductID {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "ProductID is invalid")
		return
	}
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "limit is required and must be positive")
		return
	}
	limit = min(limit, maxTradesLimit)
	now := s.o.Clock.Now()
	end, err := unixParam(q.Get("end"), now)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "end must be a UNIX timestamp")
		return
	}
	start, err := unixParam(q.Get("start"), end.Add(-time.Duration(limit)*tradeBucket))
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "start must be a UNIX timestamp")
		return
	}
	ctx := r.Context()
	trades, err := fakex.Trades(ctx, s.o.Venue, s.rules.Symbol, start.Add(-time.Nanosecond), end, now, tradeBucket,
		s.rules.Tick)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
		return
	}
	slices.Reverse(trades)
	trades = trades[:min(len(trades), limit)]
	out := make([]tradeBody, len(trades))
	for i, t := range trades {
		side := "BUY"
		if t.BuyerMaker {
			side = "SELL"
		}
		out[i] = tradeBody{TradeID: strconv.FormatInt(t.ID, 10), ProductID: s.o.ProductID, Price: str(t.Price),
			Size: str(t.Qty), Time: stamp(t.Time), Side: side, Exchange: "coinbase"}
	}
	body := map[string]any{"trades": out, "best_bid": "", "best_ask": ""}
	if b, err := s.o.Venue.Book(ctx, s.rules.Symbol, 1); err == nil {
		if l, ok := b.BestBid(); ok {
			body["best_bid"] = str(l.Price)
		}
		if l, ok := b.BestAsk(); ok {
			body["best_ask"] = str(l.Price)
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// unixParam reads UNIX seconds, or def when absent.
func unixParam(v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0).UTC(), nil
}

// transactionSummary answers the fee tier: the sim's fees.
func (s *Server) transactionSummary(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"total_volume": 0, "total_fees": 0,
		"fee_tier": map[string]string{"pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "10000",
			"taker_fee_rate": str(s.rules.TakerFee), "maker_fee_rate": str(s.rules.MakerFee), "aop_from": "", "aop_to": ""},
		"margin_rate": nil, "goods_and_services_tax": nil, "advanced_trade_only_volume": 0,
		"advanced_trade_only_fees": 0, "coinbase_pro_volume": 0, "coinbase_pro_fees": 0, "total_balance": "",
		"has_promo_fee": false,
	})
}

// keyPermissions answers what the key may do.
func (s *Server) keyPermissions(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	p := s.perms
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"can_view": p.view, "can_trade": p.trade, "can_transfer": p.transfer,
		"portfolio_uuid": s.portfolio, "portfolio_type": "DEFAULT"})
}
