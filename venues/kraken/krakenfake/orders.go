package krakenfake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// pageSize is how many orders or trades Kraken's history methods return at
// a time.
const pageSize = 50

// order is what the fake remembers of an accepted order; its state lives
// in the sim, under the txid as client id.
type order struct {
	txid     string
	clOrdID  string
	userref  int64
	side     market.Side
	price    decimal.Decimal
	vol      decimal.Decimal
	tif      market.TimeInForce
	oflags   string
	opened   time.Time
	canceled time.Time // when CancelOrder took it off the book
}

// clOrdIDFormats are the three forms Kraken takes: a UUID with dashes, 32
// hex digits, or free ASCII text of up to 18 characters.
var (
	longUUID  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	shortUUID = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	freeText  = regexp.MustCompile(`^[\x21-\x7e]{1,18}$`)
)

func validClOrdID(id string) bool {
	return longUUID.MatchString(id) || shortUUID.MatchString(id) || freeText.MatchString(id)
}

// handleAddOrder places a limit order: pair, type, ordertype=limit, price,
// volume, timeinforce (GTC, IOC), oflags (post, fciq, fcib, nompp),
// cl_ord_id or userref, validate.
func (s *Server) handleAddOrder(w http.ResponseWriter, r *http.Request, f url.Values) {
	if !s.pairParam(w, f) {
		return
	}
	var side market.Side
	switch f.Get("type") {
	case "buy":
		side = market.Buy
	case "sell":
		side = market.Sell
	default:
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:type")
		return
	}
	if f.Get("ordertype") != "limit" {
		// The fake serves limit orders only, which is all the adapter sends.
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:ordertype")
		return
	}
	price, err := decimal.NewFromString(f.Get("price"))
	if err != nil {
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:price")
		return
	}
	vol, err := decimal.NewFromString(f.Get("volume"))
	if err != nil {
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:volume")
		return
	}
	post := false
	var flags []string
	if of := f.Get("oflags"); of != "" {
		for _, fl := range strings.Split(of, ",") {
			switch fl {
			case "post":
				post = true
			case "fciq", "fcib", "nompp":
			default:
				writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:oflags")
				return
			}
			flags = append(flags, fl)
		}
	}
	tif := market.GTC
	switch f.Get("timeinforce") {
	case "", "GTC":
	case "IOC":
		tif = market.IOC
	default:
		// GTD needs expiretm, which the fake does not serve.
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:timeinforce")
		return
	}
	if post {
		if tif == market.IOC {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:oflags")
			return
		}
		tif = market.PostOnly
	}
	clOrdID, userrefText := f.Get("cl_ord_id"), f.Get("userref")
	var userref int64
	if userrefText != "" {
		if userref, err = strconv.ParseInt(userrefText, 10, 32); err != nil || clOrdID != "" {
			// cl_ord_id and userref are mutually exclusive.
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:userref")
			return
		}
	}
	if f.Has("cl_ord_id") && !validClOrdID(clOrdID) {
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:cl_ord_id")
		return
	}
	descr := map[string]string{"order": fmt.Sprintf("%s %s %s @ limit %s", f.Get("type"),
		vol.StringFixed(s.pair.lotDecimals), s.pair.altname, price.String())}
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Kraken keeps cl_ord_id unique among the client's open orders only: a
	// closed order's id may be used again, and makes a second order.
	if clOrdID != "" && s.openWith(ctx, clOrdID) {
		// Assumption: the wording is the one reported from the field;
		// Kraken's error page does not list this case.
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:cl_ord_id not unique")
		return
	}
	if f.Get("validate") == "true" || f.Get("validate") == "1" {
		if err := s.pair.in.Check(price, vol); err != nil {
			writeErrors(w, http.StatusOK, ruleError(err))
			return
		}
		writeResult(w, map[string]any{"descr": descr})
		return
	}
	txid := s.newTxid('O')
	_, _, err = s.o.Venue.Place(ctx, market.OrderRequest{ClientID: txid, Symbol: s.pair.symbol, Side: side,
		Price: price, Qty: vol, TIF: tif})
	if err != nil {
		writeErrors(w, http.StatusOK, placeError(err))
		return
	}
	o := &order{txid: txid, clOrdID: clOrdID, userref: userref, side: side, price: price, vol: vol, tif: tif,
		oflags: strings.Join(flags, ","), opened: s.o.Clock.Now()}
	s.orders[txid] = o
	s.seq = append(s.seq, o)
	s.placed = append(s.placed, clOrdID)
	writeResult(w, map[string]any{"descr": descr, "txid": []string{txid}})
}

// openWith reports whether an open order carries clOrdID. Caller holds mu.
func (s *Server) openWith(ctx context.Context, clOrdID string) bool {
	for _, o := range s.seq {
		if o.clOrdID != clOrdID {
			continue
		}
		if so, err := s.o.Venue.Order(ctx, s.pair.symbol, o.txid); err == nil && !so.Status.Done() {
			return true
		}
	}
	return false
}

// placeError turns the sim's refusal into Kraken's words.
func placeError(err error) string {
	var re *venues.RejectError
	switch {
	case errors.Is(err, venues.ErrWouldTake):
		// Assumption: a crossing post-only order is refused at entry with
		// this error (as Nautilus' Kraken adapter expects); nothing rests.
		return "EOrder:Post only order"
	case errors.As(err, &re):
		switch re.Code {
		case "TICK":
			return "EOrder:Tick size check failed"
		case "STEP", "NON_POSITIVE_QTY":
			return "EGeneral:Invalid arguments:volume"
		case "NON_POSITIVE_PRICE":
			return "EGeneral:Invalid arguments:price"
		case "MIN_QTY":
			return "EOrder:Order minimum not met"
		case "MIN_NOTIONAL":
			return "EOrder:Cost minimum not met"
		case "CLIENT_ID":
			return "EGeneral:Invalid arguments:cl_ord_id"
		}
	case errors.Is(err, venues.ErrDuplicateClientID):
		return "EGeneral:Invalid arguments:cl_ord_id not unique"
	case errors.Is(err, venues.ErrUnknownSymbol):
		return "EQuery:Unknown asset pair"
	}
	return "EGeneral:Internal error"
}

// ruleError names a rule break for a validate-only order.
func ruleError(err error) string {
	var re *market.RuleError
	if errors.As(err, &re) {
		return placeError(&venues.RejectError{Code: re.Rule})
	}
	return "EGeneral:Invalid arguments"
}

// handleCancelOrder cancels an open order named by txid (or userref) or by
// cl_ord_id: {"count": 1}. An order that is not open is unknown.
func (s *Server) handleCancelOrder(w http.ResponseWriter, r *http.Request, f url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := r.Context()
	var target []*order
	for _, o := range s.seq {
		switch {
		case f.Has("cl_ord_id"):
			if o.clOrdID != f.Get("cl_ord_id") {
				continue
			}
		case f.Get("txid") != "":
			if o.txid != f.Get("txid") && strconv.FormatInt(o.userref, 10) != f.Get("txid") {
				continue
			}
		default:
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments")
			return
		}
		if st, err := s.o.Venue.Order(ctx, s.pair.symbol, o.txid); err == nil && !st.Status.Done() {
			target = append(target, o)
		}
	}
	if len(target) == 0 {
		writeErrors(w, http.StatusOK, "EOrder:Unknown order")
		return
	}
	now := s.o.Clock.Now()
	for _, o := range target {
		if _, err := s.o.Venue.Cancel(ctx, s.pair.symbol, o.txid); err != nil {
			writeErrors(w, http.StatusOK, "EGeneral:Internal error")
			return
		}
		o.canceled = now
	}
	writeResult(w, map[string]any{"count": len(target)})
}
