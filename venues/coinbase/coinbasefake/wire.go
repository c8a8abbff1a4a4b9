package coinbasefake

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// errorBody is Coinbase's error answer.
type errorBody struct {
	Error        string `json:"error"`
	ErrorDetails string `json:"error_details"`
	Message      string `json:"message"`
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers Coinbase's error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, ErrorDetails: msg, Message: msg})
}

// protocol writes Coinbase's failure answers for injected faults.
type protocol struct{}

// WriteServerError answers a 5xx.
func (protocol) WriteServerError(w http.ResponseWriter, status int) {
	code := "INTERNAL"
	if status == http.StatusServiceUnavailable {
		code = "UNAVAILABLE"
	}
	writeError(w, status, code, http.StatusText(status))
}

// WriteRateLimited answers a 429. Coinbase documents no Retry-After; the
// fake sends one so a client that honours it can be tested.
func (protocol) WriteRateLimited(w http.ResponseWriter, retryAfter time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)))
	writeError(w, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED", "Too many requests")
}

// WriteBanned answers as a rate limit: Coinbase has no separate ban code.
func (p protocol) WriteBanned(w http.ResponseWriter, retryAfter time.Duration) {
	p.WriteRateLimited(w, retryAfter)
}

// str prints a decimal as Coinbase does, in a JSON string.
func str(d decimal.Decimal) string { return d.String() }

// stamp prints a time as Coinbase does: RFC 3339, UTC.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

type productBody struct {
	ProductID                 string   `json:"product_id"`
	Price                     string   `json:"price"`
	PricePercentageChange24h  string   `json:"price_percentage_change_24h"`
	Volume24h                 string   `json:"volume_24h"`
	VolumePercentageChange24h string   `json:"volume_percentage_change_24h"`
	BaseIncrement             string   `json:"base_increment"`
	QuoteIncrement            string   `json:"quote_increment"`
	QuoteMinSize              string   `json:"quote_min_size"`
	QuoteMaxSize              string   `json:"quote_max_size"`
	BaseMinSize               string   `json:"base_min_size"`
	BaseMaxSize               string   `json:"base_max_size"`
	BaseName                  string   `json:"base_name"`
	QuoteName                 string   `json:"quote_name"`
	Watched                   bool     `json:"watched"`
	IsDisabled                bool     `json:"is_disabled"`
	New                       bool     `json:"new"`
	Status                    string   `json:"status"`
	CancelOnly                bool     `json:"cancel_only"`
	LimitOnly                 bool     `json:"limit_only"`
	PostOnly                  bool     `json:"post_only"`
	TradingDisabled           bool     `json:"trading_disabled"`
	AuctionMode               bool     `json:"auction_mode"`
	ProductType               string   `json:"product_type"`
	QuoteCurrencyID           string   `json:"quote_currency_id"`
	BaseCurrencyID            string   `json:"base_currency_id"`
	MidMarketPrice            string   `json:"mid_market_price"`
	Alias                     string   `json:"alias"`
	AliasTo                   []string `json:"alias_to"`
	BaseDisplaySymbol         string   `json:"base_display_symbol"`
	QuoteDisplaySymbol        string   `json:"quote_display_symbol"`
	ViewOnly                  bool     `json:"view_only"`
	PriceIncrement            string   `json:"price_increment"`
	DisplayName               string   `json:"display_name"`
	ProductVenue              string   `json:"product_venue"`
}

type level struct {
	Price string `json:"price"`
	Size  string `json:"size"`
}

type tradeBody struct {
	TradeID   string `json:"trade_id"`
	ProductID string `json:"product_id"`
	Price     string `json:"price"`
	Size      string `json:"size"`
	Time      string `json:"time"`
	Side      string `json:"side"`
	Bid       string `json:"bid"`
	Ask       string `json:"ask"`
	Exchange  string `json:"exchange"`
}

// limitIOC is sor_limit_ioc, limitGTC limit_limit_gtc: sizes and prices
// are strings on the wire.
type limitIOC struct {
	BaseSize   string `json:"base_size"`
	LimitPrice string `json:"limit_price"`
}

type limitGTC struct {
	BaseSize   string `json:"base_size"`
	LimitPrice string `json:"limit_price"`
	PostOnly   bool   `json:"post_only"`
}

type orderConfig struct {
	SorLimitIOC   *limitIOC `json:"sor_limit_ioc,omitempty"`
	LimitLimitGTC *limitGTC `json:"limit_limit_gtc,omitempty"`
}

type createRequest struct {
	ClientOrderID      string                     `json:"client_order_id"`
	ProductID          string                     `json:"product_id"`
	Side               string                     `json:"side"`
	OrderConfiguration map[string]json.RawMessage `json:"order_configuration"`
}

type successResponse struct {
	OrderID       string `json:"order_id"`
	ProductID     string `json:"product_id"`
	Side          string `json:"side"`
	ClientOrderID string `json:"client_order_id"`
}

type errorResponse struct {
	Error                 string `json:"error"`
	Message               string `json:"message"`
	ErrorDetails          string `json:"error_details"`
	PreviewFailureReason  string `json:"preview_failure_reason"`
	NewOrderFailureReason string `json:"new_order_failure_reason"`
}

type createResponse struct {
	Success            bool             `json:"success"`
	FailureReason      string           `json:"failure_reason"`
	OrderID            string           `json:"order_id"`
	SuccessResponse    *successResponse `json:"success_response,omitempty"`
	ErrorResponse      *errorResponse   `json:"error_response,omitempty"`
	OrderConfiguration *orderConfig     `json:"order_configuration,omitempty"`
}

type orderBody struct {
	OrderID               string      `json:"order_id"`
	ProductID             string      `json:"product_id"`
	UserID                string      `json:"user_id"`
	OrderConfiguration    orderConfig `json:"order_configuration"`
	Side                  string      `json:"side"`
	ClientOrderID         string      `json:"client_order_id"`
	Status                string      `json:"status"`
	TimeInForce           string      `json:"time_in_force"`
	CreatedTime           string      `json:"created_time"`
	CompletionPercentage  string      `json:"completion_percentage"`
	FilledSize            string      `json:"filled_size"`
	AverageFilledPrice    string      `json:"average_filled_price"`
	Fee                   string      `json:"fee"`
	NumberOfFills         string      `json:"number_of_fills"`
	FilledValue           string      `json:"filled_value"`
	PendingCancel         bool        `json:"pending_cancel"`
	SizeInQuote           bool        `json:"size_in_quote"`
	TotalFees             string      `json:"total_fees"`
	SizeInclusiveOfFees   bool        `json:"size_inclusive_of_fees"`
	TotalValueAfterFees   string      `json:"total_value_after_fees"`
	TriggerStatus         string      `json:"trigger_status"`
	OrderType             string      `json:"order_type"`
	RejectReason          string      `json:"reject_reason"`
	Settled               bool        `json:"settled"`
	ProductType           string      `json:"product_type"`
	RejectMessage         string      `json:"reject_message"`
	CancelMessage         string      `json:"cancel_message"`
	OrderPlacementSource  string      `json:"order_placement_source"`
	OutstandingHoldAmount string      `json:"outstanding_hold_amount"`
	IsLiquidation         bool        `json:"is_liquidation"`
	LastFillTime          string      `json:"last_fill_time"`
	EditHistory           []any       `json:"edit_history"`
	RetailPortfolioID     string      `json:"retail_portfolio_id"`
}

type fillBody struct {
	EntryID            string `json:"entry_id"`
	TradeID            string `json:"trade_id"`
	OrderID            string `json:"order_id"`
	TradeTime          string `json:"trade_time"`
	TradeType          string `json:"trade_type"`
	Price              string `json:"price"`
	Size               string `json:"size"`
	Commission         string `json:"commission"`
	ProductID          string `json:"product_id"`
	SequenceTimestamp  string `json:"sequence_timestamp"`
	LiquidityIndicator string `json:"liquidity_indicator"`
	SizeInQuote        bool   `json:"size_in_quote"`
	UserID             string `json:"user_id"`
	Side               string `json:"side"`
	RetailPortfolioID  string `json:"retail_portfolio_id"`
}

type cancelResult struct {
	Success       bool   `json:"success"`
	FailureReason string `json:"failure_reason"`
	OrderID       string `json:"order_id"`
}
