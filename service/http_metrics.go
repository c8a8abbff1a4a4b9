package service

import (
	"github.com/prometheus/client_golang/prometheus"
)

// family is one metric of the registry, a Prometheus vector (counter,
// gauge or histogram) with its labels; add and observe take the label
// values in order.
type family struct {
	name    string
	counter *prometheus.CounterVec
	gauge   *prometheus.GaugeVec
	hist    *prometheus.HistogramVec
}

func newFamily(name, typ, help string, labels ...string) *family {
	f := &family{name: name}
	if typ == "gauge" {
		f.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	} else {
		f.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	return f
}

func newHistogram(name, help string, buckets []float64, labels ...string) *family {
	return &family{name: name, hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help,
		Buckets: buckets}, labels)}
}

// collector is the vector to register.
func (f *family) collector() prometheus.Collector {
	switch {
	case f.gauge != nil:
		return f.gauge
	case f.hist != nil:
		return f.hist
	}
	return f.counter
}

// add adds d to a counter or gauge.
func (f *family) add(d float64, values ...string) {
	if f.gauge != nil {
		f.gauge.WithLabelValues(values...).Add(d)
		return
	}
	f.counter.WithLabelValues(values...).Add(d)
}

// observe records one value in a histogram.
func (f *family) observe(v float64, values ...string) { f.hist.WithLabelValues(values...).Observe(v) }
