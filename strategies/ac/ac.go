// Package ac is the Almgren–Chriss model of optimal execution (Almgren &
// Chriss, "Optimal execution of portfolio transactions", Journal of Risk,
// 2000): the risk-averse optimal liquidation trajectory in discrete time,
// and the expected cost E and variance V of any trajectory under linear
// temporary and permanent impact.
//
// It is a model, so it works in float64; callers turn its quantities into
// orders with explicit rounding (Schedule rounds its targets down to 1e-8).
package ac

import (
	"errors"
	"fmt"
	"math"
)

// Params are the model's inputs, in the caller's units: X shares, T in a
// time unit, σ in price per √(time unit), ε in price per share, η in
// price·time per share², γ in price per share², λ per unit of price.
type Params struct {
	X       float64 `json:"X"`       // shares to sell
	T       float64 `json:"T"`       // horizon
	N       int     `json:"N"`       // periods
	Sigma   float64 `json:"sigma"`   // volatility
	Epsilon float64 `json:"epsilon"` // fixed cost per share: half the spread plus fees
	Eta     float64 `json:"eta"`     // temporary impact
	Gamma   float64 `json:"gamma"`   // permanent impact
	Lambda  float64 `json:"lambda"`  // risk aversion
}

// Tau is the period length T/N.
func (p Params) Tau() float64 { return p.T / float64(p.N) }

// EtaTilde is η − γτ/2, the temporary impact net of the permanent part
// already counted by the discrete model.
func (p Params) EtaTilde() float64 { return p.Eta - p.Gamma*p.Tau()/2 }

// Validate checks the parameters make a well-posed problem.
func (p Params) Validate() error {
	switch {
	case p.N < 1:
		return fmt.Errorf("ac: N = %d periods; need at least 1", p.N)
	case !(p.X > 0) || math.IsInf(p.X, 0):
		return fmt.Errorf("ac: X = %g shares; must be > 0", p.X)
	case !(p.T > 0) || math.IsInf(p.T, 0):
		return fmt.Errorf("ac: T = %g; must be > 0", p.T)
	case !(p.Sigma >= 0) || math.IsInf(p.Sigma, 0):
		return fmt.Errorf("ac: σ = %g; must be ≥ 0", p.Sigma)
	case !(p.Epsilon >= 0):
		return fmt.Errorf("ac: ε = %g; must be ≥ 0", p.Epsilon)
	case !(p.Eta > 0):
		return fmt.Errorf("ac: η = %g; must be > 0", p.Eta)
	case !(p.Gamma >= 0):
		return fmt.Errorf("ac: γ = %g; must be ≥ 0", p.Gamma)
	case !(p.Lambda > 0) || math.IsInf(p.Lambda, 0):
		return fmt.Errorf("ac: λ = %g; must be > 0 (as λ → 0 the optimal trajectory tends to TWAP)", p.Lambda)
	case !(p.EtaTilde() > 0):
		return fmt.Errorf("ac: η̃ = η − γτ/2 = %g − %g·%g/2 = %g; must be > 0 (lower γ or use more periods)",
			p.Eta, p.Gamma, p.Tau(), p.EtaTilde())
	}
	return nil
}

// Kappa solves (2/τ²)(cosh(κτ) − 1) = λσ²/η̃ for κ.
func Kappa(p Params) (float64, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	tau := p.Tau()
	k2 := p.Lambda * p.Sigma * p.Sigma / p.EtaTilde()
	k := math.Acosh(k2*tau*tau/2+1) / tau
	if math.IsNaN(k) || math.IsInf(k, 0) {
		return 0, fmt.Errorf("ac: κ overflows for λσ²/η̃ = %g", k2)
	}
	return k, nil
}

// linearKT is the κT below which the trajectory is TWAP to 1e-12.
const linearKT = 1e-6

// Trajectory returns the optimal holdings x_0 = X, …, x_N = 0, with
// x_j = X·sinh(κ(T − t_j))/sinh(κT).
func Trajectory(p Params) ([]float64, error) {
	k, err := Kappa(p)
	if err != nil {
		return nil, err
	}
	x := make([]float64, p.N+1)
	x[0] = p.X
	kt := k * p.T
	for j := 1; j < p.N; j++ {
		frac := float64(p.N-j) / float64(p.N)
		switch {
		case kt < linearKT:
			x[j] = p.X * frac
		case kt > 700:
			// sinh overflows; the ratio is exp(−κt_j) to double precision.
			x[j] = p.X * math.Exp(-k*p.Tau()*float64(j))
		default:
			x[j] = p.X * math.Sinh(kt*frac) / math.Sinh(kt)
		}
	}
	return x, nil
}

// Trades returns n_k = x_{k−1} − x_k, k = 1..N.
func Trades(x []float64) []float64 {
	if len(x) < 2 {
		return nil
	}
	n := make([]float64, len(x)-1)
	for k := 1; k < len(x); k++ {
		n[k-1] = x[k-1] - x[k]
	}
	return n
}

// Cost returns the expected cost E and variance V of any holdings schedule
// x (x_0 … x_N) by direct summation:
// E = ½γX² + εΣ|n_k| + (η̃/τ)Σn_k², V = σ²τΣ_{k=1..N} x_k².
func Cost(p Params, x []float64) (e, v float64) {
	tau := p.Tau()
	e = 0.5 * p.Gamma * p.X * p.X
	for _, n := range Trades(x) {
		e += p.Epsilon*math.Abs(n) + p.EtaTilde()/tau*n*n
	}
	for k := 1; k < len(x); k++ {
		v += x[k] * x[k]
	}
	return e, p.Sigma * p.Sigma * tau * v
}

// ClosedForm returns E and V of the optimal trajectory from the paper's
// closed-form expressions.
func ClosedForm(p Params) (e, v float64, err error) {
	k, err := Kappa(p)
	if err != nil {
		return 0, 0, err
	}
	tau, T, X := p.Tau(), p.T, p.X
	if k*T < linearKT {
		x := make([]float64, p.N+1)
		for j := range x {
			x[j] = X * float64(p.N-j) / float64(p.N)
		}
		e, v = Cost(p, x)
		return e, v, nil
	}
	sh := math.Sinh(k * T)
	e = 0.5*p.Gamma*X*X + p.Epsilon*X +
		p.EtaTilde()*X*X*math.Tanh(0.5*k*tau)*(tau*math.Sinh(2*k*T)+2*T*math.Sinh(k*tau))/(2*tau*tau*sh*sh)
	v = 0.5 * p.Sigma * p.Sigma * X * X *
		(tau*sh*math.Cosh(k*(T-tau)) - T*math.Sinh(k*tau)) / (sh * sh * math.Sinh(k*tau))
	if math.IsNaN(e) || math.IsNaN(v) || math.IsInf(e, 0) || math.IsInf(v, 0) {
		return 0, 0, errors.New("ac: closed form overflows for this κT; use Cost on the trajectory")
	}
	return e, v, nil
}

// Point is one schedule on the efficient frontier.
type Point struct {
	Lambda float64 `json:"lambda"`
	E      float64 `json:"expected_cost"`
	V      float64 `json:"variance"`
}

// Frontier returns E and V of the optimal trajectory for each λ.
func Frontier(p Params, lambdas []float64) ([]Point, error) {
	out := make([]Point, 0, len(lambdas))
	for _, l := range lambdas {
		q := p
		q.Lambda = l
		x, err := Trajectory(q)
		if err != nil {
			return nil, err
		}
		e, v := Cost(q, x)
		out = append(out, Point{Lambda: l, E: e, V: v})
	}
	return out, nil
}
