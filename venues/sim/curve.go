package sim

import "time"

// Intraday volume curves: the share of a day's volume traded in each UTC
// hour, in percent; each sums to 100. Calibrated to the 2024 Binance facts
// in ../shared/data/README.md.
var (
	weekdayCurve = [24]float64{
		4.0, 3.6, 3.3, 3.0, 2.9, 2.8, 3.0, 3.4, 3.9, 4.0, 3.9, 3.9,
		4.5, 5.8, 8.3, 6.6, 5.3, 4.8, 4.2, 4.0, 3.9, 3.7, 3.7, 3.5,
	}
	weekendCurve = [24]float64{
		4.3, 4.0, 3.7, 3.4, 3.2, 3.1, 3.2, 3.4, 3.7, 4.0, 4.3, 4.6,
		4.9, 5.2, 5.4, 5.3, 5.0, 4.7, 4.5, 4.3, 4.1, 4.0, 3.9, 3.8,
	}
)

// minuteCurves are the per-minute shares of a day, weekday then weekend,
// built once from the hourly curves. They are read-only after that.
var minuteCurves = [2][1440]float64{minuteCurve(&weekdayCurve), minuteCurve(&weekendCurve)}

// minuteCurve spreads an hourly curve over minutes smoothly while keeping
// every hour's total: within hour h the density is the quadratic that
// starts at the mean of hours h−1 and h, ends at the mean of hours h and
// h+1 (so it is continuous across hours; the day wraps around) and
// integrates to hour h's share. A minute's weight is the exact integral of
// that quadratic over the minute. The weights sum to 1.
func minuteCurve(hours *[24]float64) (w [1440]float64) {
	var total float64
	for h := 0; h < 24; h++ {
		a := hours[h] / 100
		e0 := (hours[(h+23)%24]/100 + a) / 2
		e1 := (a + hours[(h+1)%24]/100) / 2
		// q(s) = e0 + b·s + c·s² on s ∈ [0, 1]: q(1) = e1, ∫q = a.
		c := 3*e0 + 3*e1 - 6*a
		b := 6*a - 4*e0 - 2*e1
		prim := func(s float64) float64 { return e0*s + b*s*s/2 + c*s*s*s/3 }
		for m := 0; m < 60; m++ {
			v := prim(float64(m+1)/60) - prim(float64(m)/60)
			w[h*60+m] = v
			total += v
		}
	}
	for i := range w {
		w[i] /= total
	}
	return w
}

// MinuteShare returns the expected fraction of a day's volume traded in the
// minute containing t (UTC): the smooth weekday or weekend curve.
func MinuteShare(t time.Time) float64 {
	t = t.UTC()
	c := &minuteCurves[0]
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		c = &minuteCurves[1]
	}
	return c[t.Hour()*60+t.Minute()]
}

// HourlyCurve returns the model's share of a day's volume per UTC hour, in
// percent (summing to 100), for weekdays or weekends.
func HourlyCurve(weekend bool) [24]float64 {
	if weekend {
		return weekendCurve
	}
	return weekdayCurve
}
