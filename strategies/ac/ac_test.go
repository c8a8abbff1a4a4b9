package ac

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// paper is the example of Almgren & Chriss (2000), section 3: 10⁶ shares
// over 5 days in 5 periods.
func paper(lambda float64) Params {
	return Params{X: 1e6, T: 5, N: 5, Sigma: 0.95, Epsilon: 0.0625, Eta: 2.5e-6, Gamma: 2.5e-7, Lambda: lambda}
}

func near(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b)) }

func TestClosedFormEqualsDirectSummation(t *testing.T) {
	cases := []Params{paper(1e-6), paper(2e-6), paper(1e-8),
		{X: 500, T: 480, N: 480, Sigma: 45, Epsilon: 28, Eta: 0.3, Gamma: 0, Lambda: 1e-8},
		{X: 500, T: 480, N: 480, Sigma: 45, Epsilon: 28, Eta: 0.3, Gamma: 0.0001, Lambda: 1e-7}}
	for _, p := range cases {
		x, err := Trajectory(p)
		if err != nil {
			t.Fatal(err)
		}
		e, v := Cost(p, x)
		ce, cv, err := ClosedForm(p)
		if err != nil {
			t.Fatal(err)
		}
		if !near(e, ce, 1e-9) || !near(v, cv, 1e-9) {
			t.Errorf("%+v: sum E=%.12g V=%.12g, closed form E=%.12g V=%.12g", p, e, v, ce, cv)
		}
	}
}

func TestPaperExample_HigherRiskAversionSellsFasterAtHigherCost(t *testing.T) {
	lo, hi := paper(1e-6), paper(2e-6)
	xl, err := Trajectory(lo)
	if err != nil {
		t.Fatal(err)
	}
	xh, _ := Trajectory(hi)
	for _, x := range [][]float64{xl, xh} {
		if x[0] != 1e6 || x[5] != 0 {
			t.Fatalf("ends: %v", x)
		}
		for j := 1; j < len(x); j++ {
			linear := 1e6 * float64(5-j) / 5
			if !(x[j] < x[j-1]) || (j < 5 && !(x[j] < linear)) {
				t.Fatalf("trajectory %v not decreasing and front-loaded", x)
			}
		}
	}
	if !(xh[1] < xl[1]) {
		t.Fatalf("λ=2e-6 holds %g after a day, λ=1e-6 holds %g: more risk aversion must sell faster", xh[1], xl[1])
	}
	el, vl := Cost(lo, xl)
	eh, vh := Cost(hi, xh)
	if !(eh > el && vh < vl) {
		t.Fatalf("E %g→%g, V %g→%g: want more cost, less variance", el, eh, vl, vh)
	}
	// κ for λ = 1e-6 from the discrete equation, checked by substitution.
	k, _ := Kappa(lo)
	tau := lo.Tau()
	if lhs, rhs := 2/(tau*tau)*(math.Cosh(k*tau)-1), lo.Lambda*lo.Sigma*lo.Sigma/lo.EtaTilde(); !near(lhs, rhs, 1e-12) {
		t.Fatalf("κ = %g does not solve the equation: %g vs %g", k, lhs, rhs)
	}
}

func TestSmallLambdaIsTWAP(t *testing.T) {
	x, err := Trajectory(paper(1e-20))
	if err != nil {
		t.Fatal(err)
	}
	for j, h := range x {
		if want := 1e6 * float64(5-j) / 5; !near(h, want, 1e-9) && want != 0 {
			t.Fatalf("x_%d = %g, want the linear %g", j, h, want)
		}
	}
}

func TestValidate_ClearErrors(t *testing.T) {
	bad := map[string]Params{
		"λ must be > 0": paper(0),
		"λ = -1":        paper(-1),
		"η̃":            {X: 1, T: 5, N: 1, Sigma: 1, Eta: 1e-6, Gamma: 1e-6, Lambda: 1},
		"N = 0 periods": {X: 1, T: 5, N: 0, Sigma: 1, Eta: 1, Lambda: 1},
		"X = 0 shares":  {X: 0, T: 5, N: 5, Sigma: 1, Eta: 1, Lambda: 1},
		"T = NaN":       {X: 1, T: math.NaN(), N: 5, Sigma: 1, Eta: 1, Lambda: 1},
	}
	for name, p := range bad {
		_, err := Trajectory(p)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		want := strings.Fields(name)[0]
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not name %q", name, err, want)
		}
	}
}

func TestFrontier_CostUpVarianceDown(t *testing.T) {
	pts, err := Frontier(paper(1e-6), []float64{1e-8, 1e-7, 1e-6, 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(pts); i++ {
		if !(pts[i].E > pts[i-1].E && pts[i].V < pts[i-1].V) {
			t.Fatalf("frontier not efficient at %d: %+v", i, pts)
		}
	}
}

func TestSchedule_MonotoneExactAtTheEndsNeverAboveQty(t *testing.T) {
	start := time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	end := start.Add(8 * time.Hour)
	qty := decimal.RequireFromString("500")
	p := Params{X: 500, T: 480, N: 480, Sigma: 45, Epsilon: 28, Eta: 0.3, Lambda: 1e-7}
	s, err := NewSchedule(qty, start, end, 480, p)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Target(start).IsZero() || !s.Target(end).Equal(qty) || !s.Target(end.Add(time.Hour)).Equal(qty) {
		t.Fatal("ends are not exact")
	}
	prev := decimal.Zero
	for m := 0; m <= 480*4; m++ {
		got := s.Target(start.Add(time.Duration(m) * 15 * time.Second))
		if got.LessThan(prev) || got.GreaterThan(qty) {
			t.Fatalf("target %s after %s at step %d", got, prev, m)
		}
		prev = got
	}
	// Front-loaded: more than TWAP's half by the middle.
	if mid := s.Target(start.Add(4 * time.Hour)); !mid.GreaterThan(decimal.NewFromInt(250)) {
		t.Fatalf("midpoint target %s, want above 250", mid)
	}
}
