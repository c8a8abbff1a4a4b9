package settlement

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/market"
)

// ErrUnknownParent is returned for a parent id the ledger has never seen.
var ErrUnknownParent = errors.New("settlement: unknown parent")

// Display precision of derived figures; the sums (quantities, fees,
// proceeds) are exact.
const (
	pricePlaces = 8
	bpsPlaces   = 4
)

// Report is one parent's settlement, computed from the ledger. Quantities,
// fees and proceeds are exact sums of the recorded fills; average_price is
// rounded to 8 and shortfall_bps to 4 decimal places.
type Report struct {
	ParentID         string          `json:"parent_id"`
	Side             string          `json:"side"`
	Symbol           string          `json:"symbol"`
	State            string          `json:"state"`
	Quantity         decimal.Decimal `json:"quantity"`
	FilledQuantity   decimal.Decimal `json:"filled_quantity"`
	UnfilledQuantity decimal.Decimal `json:"unfilled_quantity"`
	AveragePrice     decimal.Decimal `json:"average_price"`
	ArrivalPrice     decimal.Decimal `json:"arrival_price"`
	ShortfallBps     decimal.Decimal `json:"shortfall_bps"`
	MarketVWAP       decimal.Decimal `json:"market_vwap"`
	MaxParticipation decimal.Decimal `json:"max_participation"`
	Fees             decimal.Decimal `json:"fees"`      // in FeeAsset, the quote asset
	FeeAsset         string          `json:"fee_asset"` // the quote asset
	// OtherFees are fees charged in another asset (BNB, or the base asset
	// on a buy), by asset: not in Fees nor in the net proceeds, which are
	// in the quote asset.
	OtherFees     map[string]decimal.Decimal `json:"other_fees,omitempty"`
	GrossProceeds decimal.Decimal            `json:"gross_proceeds"` // quote received (sell) or paid (buy)
	NetProceeds   decimal.Decimal            `json:"net_proceeds"`   // sell: gross − fees; buy: gross + fees (total cost)
	ChildOrders   int                        `json:"child_orders"`
	Fills         int                        `json:"fills"`
	Rejections    int                        `json:"rejections"`
	Start         time.Time                  `json:"start"`
	End           time.Time                  `json:"end"`
	Venues        []VenueReport              `json:"venues"`
}

// VenueReport is one venue's part of a parent.
type VenueReport struct {
	Name           string          `json:"name"`
	FilledQuantity decimal.Decimal `json:"filled_quantity"`
	AveragePrice   decimal.Decimal `json:"average_price"`
	Fees           decimal.Decimal `json:"fees"`
	Gross          decimal.Decimal `json:"gross"`
	Net            decimal.Decimal `json:"net"`
	Fills          int             `json:"fills"`
	// ByFeeAsset splits the venue's fills by the asset their fees were
	// charged in, the quote asset first: what to match, line by line,
	// against the venue's own statement.
	ByFeeAsset []FeeAssetReport `json:"by_fee_asset"`
}

// FeeAssetReport is the part of one venue's fills whose fees were charged
// in one asset. Gross and Net are in the quote asset; Fees are in
// FeeAsset, so they count in Net only when FeeAsset is the quote asset
// (another asset, e.g. BNB, cannot be added to quote without a price).
// Over a venue's entries, fills, quantity, gross and net add up to the
// venue's figures, and the quote asset's fees are the venue's fees.
type FeeAssetReport struct {
	FeeAsset       string          `json:"fee_asset"`
	Fills          int             `json:"fills"`
	FilledQuantity decimal.Decimal `json:"filled_quantity"`
	Gross          decimal.Decimal `json:"gross"`
	Fees           decimal.Decimal `json:"fees"`
	Net            decimal.Decimal `json:"net"`
}

// Report computes the settlement of one parent.
func (l *Ledger) Report(ctx context.Context, parentID string) (Report, error) {
	r := Report{ParentID: parentID}
	var qty, arrival, vwap, part, start, end string
	err := l.db.QueryRowContext(ctx, `SELECT side, symbol, state, quantity, arrival_price, market_vwap,
		observed_participation, start_time, end_time FROM parents WHERE parent_id = ?`, parentID).
		Scan(&r.Side, &r.Symbol, &r.State, &qty, &arrival, &vwap, &part, &start, &end)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w %q", ErrUnknownParent, parentID)
	}
	if err != nil {
		return r, fmt.Errorf("ledger: parent %s: %w", parentID, err)
	}
	if err := parseDecimals(
		map[string]*decimal.Decimal{"quantity": &r.Quantity, "arrival": &r.ArrivalPrice, "vwap": &r.MarketVWAP, "part": &r.MaxParticipation},
		map[string]string{"quantity": qty, "arrival": arrival, "vwap": vwap, "part": part}); err != nil {
		return r, fmt.Errorf("ledger: parent %s: %w", parentID, err)
	}
	r.Start, _ = time.Parse(time.RFC3339Nano, start)
	r.End, _ = time.Parse(time.RFC3339Nano, end)
	err = l.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM events WHERE parent_id = ? AND kind = 'child_placed'),
		(SELECT COUNT(*) FROM events WHERE parent_id = ? AND kind = 'child_rejected')`, parentID, parentID).
		Scan(&r.ChildOrders, &r.Rejections)
	if err != nil {
		return r, fmt.Errorf("ledger: parent %s events: %w", parentID, err)
	}
	var body string
	err = l.db.QueryRowContext(ctx, `SELECT body FROM events WHERE parent_id = ? AND kind = 'accepted' ORDER BY seq LIMIT 1`,
		parentID).Scan(&body)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("ledger: parent %s accepted event: %w", parentID, err)
	}
	var acc bus.EventMsg
	if body != "" && json.Unmarshal([]byte(body), &acc) == nil && acc.Parent != nil {
		r.FeeAsset = acc.Parent.QuoteAsset
	}
	fills, err := l.Fills(ctx, parentID)
	if err != nil {
		return r, err
	}
	r.tally(fills)
	return r, nil
}

// tally sums fills into the report, overall and per venue.
func (r *Report) tally(fills []Fill) {
	venues := map[string]*VenueReport{}
	byAsset := map[[2]string]*FeeAssetReport{} // by venue and fee asset
	for _, f := range fills {
		v := venues[f.Venue]
		if v == nil {
			v = &VenueReport{Name: f.Venue}
			venues[f.Venue] = v
		}
		if r.FeeAsset == "" {
			r.FeeAsset = f.FeeAsset // a ledger from before the quote asset was recorded
		}
		v.FilledQuantity = v.FilledQuantity.Add(f.Qty)
		v.Gross = v.Gross.Add(f.Notional())
		v.Fills++
		a := byAsset[[2]string{f.Venue, f.FeeAsset}]
		if a == nil {
			a = &FeeAssetReport{FeeAsset: f.FeeAsset}
			byAsset[[2]string{f.Venue, f.FeeAsset}] = a
		}
		a.Fills++
		a.FilledQuantity = a.FilledQuantity.Add(f.Qty)
		a.Gross = a.Gross.Add(f.Notional())
		a.Fees = a.Fees.Add(f.Fee)
		r.FilledQuantity = r.FilledQuantity.Add(f.Qty)
		r.GrossProceeds = r.GrossProceeds.Add(f.Notional())
		r.Fills++
		if f.FeeAsset != r.FeeAsset {
			if r.OtherFees == nil {
				r.OtherFees = map[string]decimal.Decimal{}
			}
			r.OtherFees[f.FeeAsset] = r.OtherFees[f.FeeAsset].Add(f.Fee)
			continue
		}
		v.Fees = v.Fees.Add(f.Fee)
		r.Fees = r.Fees.Add(f.Fee)
	}
	r.UnfilledQuantity = r.Quantity.Sub(r.FilledQuantity)
	r.NetProceeds = r.net(r.GrossProceeds, r.Fees)
	r.AveragePrice = avg(r.GrossProceeds, r.FilledQuantity)
	if !r.FilledQuantity.IsZero() && !r.ArrivalPrice.IsZero() {
		diff := r.ArrivalPrice.Sub(r.GrossProceeds.Div(r.FilledQuantity))
		if r.Side == market.Buy.String() {
			diff = diff.Neg()
		}
		r.ShortfallBps = diff.Div(r.ArrivalPrice).Mul(decimal.NewFromInt(10_000)).Round(bpsPlaces)
	}
	r.Venues = r.Venues[:0]
	for _, v := range venues {
		v.AveragePrice = avg(v.Gross, v.FilledQuantity)
		v.Net = r.net(v.Gross, v.Fees)
		for k, a := range byAsset {
			if k[0] != v.Name {
				continue
			}
			a.Net = a.Gross
			if a.FeeAsset == r.FeeAsset {
				a.Net = r.net(a.Gross, a.Fees)
			}
			v.ByFeeAsset = append(v.ByFeeAsset, *a)
		}
		sort.Slice(v.ByFeeAsset, func(i, j int) bool {
			ai, aj := v.ByFeeAsset[i].FeeAsset, v.ByFeeAsset[j].FeeAsset
			if (ai == r.FeeAsset) != (aj == r.FeeAsset) {
				return ai == r.FeeAsset
			}
			return ai < aj
		})
		r.Venues = append(r.Venues, *v)
	}
	sort.Slice(r.Venues, func(i, j int) bool { return r.Venues[i].Name < r.Venues[j].Name })
}

func (r *Report) net(gross, fees decimal.Decimal) decimal.Decimal {
	if r.Side == market.Buy.String() {
		return gross.Add(fees)
	}
	return gross.Sub(fees)
}

func avg(notional, qty decimal.Decimal) decimal.Decimal {
	if qty.IsZero() {
		return decimal.Zero
	}
	return notional.DivRound(qty, pricePlaces)
}

// Reports computes every parent's settlement, by start time then id.
func (l *Ledger) Reports(ctx context.Context) ([]Report, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT parent_id FROM parents ORDER BY start_time, parent_id`)
	if err != nil {
		return nil, fmt.Errorf("ledger: parents: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Report, 0, len(ids))
	for _, id := range ids {
		r, err := l.Report(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// WriteText prints reports as a table per parent for people.
func WriteText(w io.Writer, reps []Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, r := range reps {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		proceeds := "net proceeds"
		if r.Side == market.Buy.String() {
			proceeds = "total cost"
		}
		fmt.Fprintf(tw, "parent %s\t%s %s %s\t%s\n", r.ParentID, r.Side, r.Quantity, r.Symbol, r.State)
		fmt.Fprintf(tw, "  filled\t%s (%s%%)\tunfilled %s\n", r.FilledQuantity, pct(r.FilledQuantity, r.Quantity), r.UnfilledQuantity)
		fmt.Fprintf(tw, "  average price\t%s\tarrival %s\n", r.AveragePrice.StringFixed(2), r.ArrivalPrice.StringFixed(2))
		fmt.Fprintf(tw, "  shortfall\t%s bps\tmarket VWAP %s\n", r.ShortfallBps.StringFixed(2), r.MarketVWAP.StringFixed(2))
		fmt.Fprintf(tw, "  max participation\t%s%%\t\n", r.MaxParticipation.Mul(decimal.NewFromInt(100)).StringFixed(2))
		fmt.Fprintf(tw, "  gross\t%s %s\tfees %s\n", r.GrossProceeds.StringFixed(2), r.FeeAsset, r.Fees.StringFixed(2))
		fmt.Fprintf(tw, "  %s\t%s %s\t\n", proceeds, r.NetProceeds.StringFixed(2), r.FeeAsset)
		for _, a := range sortedKeys(r.OtherFees) {
			fmt.Fprintf(tw, "  fees in %s\t%s\tnot in the %s figures\n", a, r.OtherFees[a], r.FeeAsset)
		}
		fmt.Fprintf(tw, "  child orders\t%d\tfills %d, rejections %d\n", r.ChildOrders, r.Fills, r.Rejections)
		writeVenues(tw, r)
	}
	return tw.Flush()
}

// writeVenues prints the settlement by venue and fee asset, sums exact, so
// that each line can be matched against the venue's statement. A line
// without tabs first closes the column block of the summary above.
func writeVenues(w io.Writer, r Report) {
	fmt.Fprintf(w, "  settlement by venue and fee asset: amounts in %s, fees in their own asset\n", r.FeeAsset)
	fmt.Fprintf(w, "  venue\tfee asset\tfills\tquantity\taverage\tgross\tfees\t%s\n", netLabel(r))
	for _, v := range r.Venues {
		for _, a := range v.ByFeeAsset {
			fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", v.Name, a.FeeAsset, a.Fills, a.FilledQuantity,
				avg(a.Gross, a.FilledQuantity).StringFixed(2), a.Gross, a.Fees, a.Net)
		}
		if len(v.ByFeeAsset) > 1 {
			fmt.Fprintf(w, "  %s\ttotal, fees in %s\t%d\t%s\t%s\t%s\t%s\t%s\n", v.Name, r.FeeAsset, v.Fills, v.FilledQuantity,
				v.AveragePrice.StringFixed(2), v.Gross, v.Fees, v.Net)
		}
	}
}

// netLabel names the net figure: proceeds for a sell, cost for a buy.
func netLabel(r Report) string {
	if r.Side == market.Buy.String() {
		return "total cost"
	}
	return "net"
}

func pct(part, whole decimal.Decimal) string {
	if whole.IsZero() {
		return "0.00"
	}
	return part.Div(whole).Mul(decimal.NewFromInt(100)).StringFixed(2)
}

// FillsCSVHeader is the header row of WriteFillsCSV, in column order.
const FillsCSVHeader = "time_utc,venue,symbol,side,quantity,price,fee,fee_asset,order_id,trade_id,parent_id"

// WriteFillsCSV writes one row per fill for audit and tax records: the
// time in UTC (RFC 3339), decimals exactly as recorded, the fee in its own
// asset, and the venue's order and trade ids.
func WriteFillsCSV(w io.Writer, fills []Fill) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(strings.Split(FillsCSVHeader, ","))
	for _, f := range fills {
		_ = cw.Write([]string{f.Time.UTC().Format(time.RFC3339Nano), f.Venue, f.Symbol, f.Side.String(),
			f.Qty.String(), f.Price.String(), f.Fee.String(), f.FeeAsset, f.OrderID, f.TradeID, f.ParentID})
	}
	cw.Flush()
	return cw.Error()
}

func sortedKeys(m map[string]decimal.Decimal) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
