// Package sim is a simulated exchange: a seeded synthetic market shared by
// several venues, each with its own liquidity share, fees and rules, a
// parametric limit order book, matching of our orders (IOC, GTC,
// post-only, cancel), a transient square-root impact of our own trades and
// depth that our trades consume and that refills. Time comes only from the
// injected clock.
//
// The model, calibrated to ../shared/data/README.md (Binance BTCUSDT, 2024):
//
//   - Volume: minute i trades DailyVolume (default 29,700 BTC) × w(i) × n,
//     n lognormal with mean 1 and σ 0.35. w is the intraday curve: hourly
//     shares (weekday: 14:00 UTC busiest at 8.3 % of the day, 05:00
//     quietest at 2.8 %, 13:00–17:00 26 %; weekend flatter, busiest hour
//     5.4 %) spread over minutes by a quadratic per hour that is continuous
//     across hours and keeps each hour's share exactly; the 1,440 weights
//     sum to 1. A venue sees Share of the volume.
//   - Price: the fundamental log price is a random walk whose variance in
//     minute i is σ_d² × w(i), so a day's log return has σ_d =
//     DailyVolatility (default 0.0275) and the price moves most when volume
//     is highest; log-linear within a minute. Minutes are generated forward
//     from Start, lazily, by a PCG seeded with Seed: same seed, same path.
//   - Book: levels sit on a fixed grid of whole ticks about 1 bps apart at
//     the start price (630 ticks of 0.01 at 63,000). The best bid is the
//     highest grid price below the venue's mid, the best ask the lowest
//     above it, so the half-spread averages 0.5 bps. The depth within x
//     bps of the mid is D(x) = Share × k × x^0.85 × sqrt(w(i)×1440) BTC per
//     side (k = 8: about 156 BTC within 75 bps for a venue with half the
//     market at an average minute; thinner at 05:00 than at 14:00). Level j
//     holds D at (j + ½) grid steps less D at (j − ½), quantities rounded
//     down to the step through cumulative sums; up to 400 levels a side.
//   - Impact: the venue's mid is the fundamental × exp(I). Each of our
//     taker orders of q adds −side × η × σ_d × sqrt(q / V_venue) to I (η =
//     0.7, V_venue = Share × DailyVolume), and removes q from the depth of
//     the side it hit, nearest levels first. Both decay exponentially with
//     ImpactHalfLife (default 5 minutes): the mid recovers and the depth
//     refills. Selling faster stacks more of both. There is no permanent
//     impact, and passive (maker) fills move nothing.
//   - Matching: IOC takes the levels inside its limit, partially if need
//     be, and expires the rest; GTC takes what crosses and rests the rest;
//     a post-only order that would cross is rejected as Binance's
//     LIMIT_MAKER is (a *venues.RejectError with code WOULD_TAKE that also
//     wraps venues.ErrWouldTake); nothing of it is placed. Rule breaks are
//     *venues.RejectError with the market.RuleError's rule as code (TICK,
//     STEP, MIN_QTY, MIN_NOTIONAL, …).
//   - Resting orders (not shown in the book) are settled against the
//     background flow whenever the venue is called, in steps that end at
//     each minute boundary and at now, at the book of the step's end: an
//     order the touch has traded through (a sell at or below the bid, a
//     buy at or above the ask) fills in full; one at or inside the touch
//     fills 10 % of the opposite-side flow (half the venue's volume in the
//     step), a simple queue model. These fills are maker fills at the
//     order's price.
//   - Fees are Instrument.Fee of the notional, maker or taker, in the quote
//     asset. Trade ids are "<IDPrefix>-<seq>" and order ids
//     "<IDPrefix>-o<seq>", in order of execution and placement.
//   - Tape: the venue's background volume accrues linearly within each
//     minute; its running totals are rounded once per instant to 1e-8 base
//     and 1e-4 quote, so Tape(a, b) + Tape(b, c) == Tape(a, c) exactly. Our
//     own fills are added on top. A window is cut at now; before Start
//     nothing traded.
//
// Floats are used only inside this model; everything that crosses the
// venue API is decimal, prices on the tick and quantities on the step.
package sim
