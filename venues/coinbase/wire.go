package coinbase

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Advanced Trade REST paths.
const (
	pathProducts       = "/api/v3/brokerage/products"
	pathBook           = "/api/v3/brokerage/product_book"
	pathOrders         = "/api/v3/brokerage/orders"
	pathOrder          = "/api/v3/brokerage/orders/historical/" // + order id
	pathListOrders     = "/api/v3/brokerage/orders/historical/batch"
	pathFills          = "/api/v3/brokerage/orders/historical/fills"
	pathCancel         = "/api/v3/brokerage/orders/batch_cancel"
	pathFees           = "/api/v3/brokerage/transaction_summary"
	pathKeyPermissions = "/api/v3/brokerage/key_permissions"
	pathTime           = "/api/v3/brokerage/time"
)

// Bounds on the decimals we accept: a price or size beyond them is a
// broken body, not a market (and "1e999999" would cost memory to print).
const (
	maxDecimalText = 64
	maxDecimalExp  = 40
)

// amount is a decimal that Coinbase sends as a JSON string ("0.01"). A bare
// number is read as well; an empty string or null is zero.
type amount struct{ decimal.Decimal }

// UnmarshalJSON reads "1.5", 1.5, "" or null.
func (a *amount) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || s == "null" {
		a.Decimal = decimal.Zero
		return nil
	}
	if len(s) > maxDecimalText {
		return fmt.Errorf("decimal of %d characters", len(s))
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return fmt.Errorf("decimal %q: %w", s, err)
	}
	if e := d.Exponent(); e > maxDecimalExp || e < -maxDecimalExp {
		return fmt.Errorf("decimal %q out of range", s)
	}
	a.Decimal = d
	return nil
}

// MarshalJSON writes the decimal as a JSON string, as Coinbase expects.
func (a amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// stamp is an RFC 3339 time; an empty string or null is the zero time.
type stamp struct{ time.Time }

// UnmarshalJSON reads "2024-10-01T08:00:00.123Z", "" or null.
func (s *stamp) UnmarshalJSON(b []byte) error {
	str := string(b)
	if str == "null" || str == `""` {
		s.Time = time.Time{}
		return nil
	}
	var raw string
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return fmt.Errorf("time %q: %w", raw, err)
	}
	s.Time = t.UTC()
	return nil
}

// count is an integer Coinbase may send as a string ("1700000000").
type count int64

// UnmarshalJSON reads "12", 12, "" or null.
func (c *count) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || s == "null" {
		*c = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("integer %q: %w", s, err)
	}
	*c = count(n)
	return nil
}

// productJSON is one product of GET /products or /products/{id}.
type productJSON struct {
	ProductID       string `json:"product_id"`
	BaseCurrencyID  string `json:"base_currency_id"`
	QuoteCurrencyID string `json:"quote_currency_id"`
	BaseIncrement   amount `json:"base_increment"`
	QuoteIncrement  amount `json:"quote_increment"`
	PriceIncrement  amount `json:"price_increment"`
	BaseMinSize     amount `json:"base_min_size"`
	QuoteMinSize    amount `json:"quote_min_size"`
	ProductType     string `json:"product_type"`
	IsDisabled      bool   `json:"is_disabled"`
}

type productsJSON struct {
	Products []productJSON `json:"products"`
}

type levelJSON struct {
	Price amount `json:"price"`
	Size  amount `json:"size"`
}

type bookJSON struct {
	Pricebook struct {
		Bids []levelJSON `json:"bids"`
		Asks []levelJSON `json:"asks"`
	} `json:"pricebook"`
}

// tradeJSON is one public trade of GET /products/{id}/ticker.
type tradeJSON struct {
	TradeID string `json:"trade_id"`
	Price   amount `json:"price"`
	Size    amount `json:"size"`
	Time    stamp  `json:"time"`
}

type tradesJSON struct {
	Trades []tradeJSON `json:"trades"`
}

// limitIOC is sor_limit_ioc; limitGTC is limit_limit_gtc.
type limitIOC struct {
	BaseSize   amount `json:"base_size"`
	LimitPrice amount `json:"limit_price"`
}

type limitGTC struct {
	BaseSize   amount `json:"base_size"`
	LimitPrice amount `json:"limit_price"`
	PostOnly   bool   `json:"post_only"`
}

// orderConfig is the order_configuration oneof, as far as we use it.
type orderConfig struct {
	SorLimitIOC   *limitIOC `json:"sor_limit_ioc,omitempty"`
	LimitLimitGTC *limitGTC `json:"limit_limit_gtc,omitempty"`
}

// createOrderJSON is the body of POST /orders.
type createOrderJSON struct {
	ClientOrderID      string      `json:"client_order_id"`
	ProductID          string      `json:"product_id"`
	Side               string      `json:"side"`
	OrderConfiguration orderConfig `json:"order_configuration"`
}

// createdJSON is POST /orders' answer: success with success_response, or
// success false with error_response (HTTP 200 either way).
type createdJSON struct {
	Success         bool   `json:"success"`
	FailureReason   string `json:"failure_reason"`
	OrderID         string `json:"order_id"`
	SuccessResponse *struct {
		OrderID       string `json:"order_id"`
		ClientOrderID string `json:"client_order_id"`
	} `json:"success_response"`
	ErrorResponse *struct {
		Error                 string `json:"error"`
		Message               string `json:"message"`
		ErrorDetails          string `json:"error_details"`
		PreviewFailureReason  string `json:"preview_failure_reason"`
		NewOrderFailureReason string `json:"new_order_failure_reason"`
	} `json:"error_response"`
}

// orderJSON is an order of GET /orders/historical/{id} and /batch.
type orderJSON struct {
	OrderID            string      `json:"order_id"`
	ProductID          string      `json:"product_id"`
	ClientOrderID      string      `json:"client_order_id"`
	Side               string      `json:"side"`
	Status             string      `json:"status"`
	CreatedTime        stamp       `json:"created_time"`
	FilledSize         amount      `json:"filled_size"`
	FilledValue        amount      `json:"filled_value"`
	AverageFilledPrice amount      `json:"average_filled_price"`
	OrderConfiguration orderConfig `json:"order_configuration"`
}

type orderEnvelope struct {
	Order *orderJSON `json:"order"`
}

type ordersJSON struct {
	Orders  []orderJSON `json:"orders"`
	HasNext bool        `json:"has_next"`
	Cursor  string      `json:"cursor"`
}

// fillJSON is one of our executions, GET /orders/historical/fills.
type fillJSON struct {
	TradeID            string `json:"trade_id"`
	OrderID            string `json:"order_id"`
	TradeTime          stamp  `json:"trade_time"`
	Price              amount `json:"price"`
	Size               amount `json:"size"`
	Commission         amount `json:"commission"`
	ProductID          string `json:"product_id"`
	LiquidityIndicator string `json:"liquidity_indicator"`
	SizeInQuote        bool   `json:"size_in_quote"`
	Side               string `json:"side"`
}

type fillsJSON struct {
	Fills  []fillJSON `json:"fills"`
	Cursor string     `json:"cursor"`
}

type cancelJSON struct {
	Results []struct {
		Success       bool   `json:"success"`
		FailureReason string `json:"failure_reason"`
		OrderID       string `json:"order_id"`
	} `json:"results"`
}

type feesJSON struct {
	FeeTier *struct {
		PricingTier  string `json:"pricing_tier"`
		TakerFeeRate amount `json:"taker_fee_rate"`
		MakerFeeRate amount `json:"maker_fee_rate"`
	} `json:"fee_tier"`
}

type permissionsJSON struct {
	CanView     bool `json:"can_view"`
	CanTrade    bool `json:"can_trade"`
	CanTransfer bool `json:"can_transfer"`
}

type timeJSON struct {
	ISO          stamp `json:"iso"`
	EpochSeconds count `json:"epochSeconds"`
	EpochMillis  count `json:"epochMillis"`
}

// errorJSON is Coinbase's error body for a 4xx/5xx.
type errorJSON struct {
	Error        string `json:"error"`
	ErrorDetails string `json:"error_details"`
	Message      string `json:"message"`
}
