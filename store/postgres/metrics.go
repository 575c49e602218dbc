package postgres

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/store"
)

type metrics struct {
	quarantined *prometheus.CounterVec
	conflicts   prometheus.Counter
	pool        poolCollector
}

func newMetrics(pool *pgxpool.Pool) *metrics {
	m := &metrics{
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollrelay_quarantined_total",
			Help: "Records set aside because they cannot be processed (item: an upstream item over a limit; event, delivery: a record the notifier cannot read or store), so the rest keeps flowing. See GET /v1/quarantine.",
		}, []string{"kind"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollrelay_store_conflicts_total",
			Help: "Store transactions redone after losing to a concurrent one (a serialization failure or deadlock).",
		}),
		pool: poolCollector{pool: pool},
	}
	for _, k := range store.QuarantineKinds {
		m.quarantined.WithLabelValues(k)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.quarantined, m.conflicts, m.pool}
}

// poolCollector reads the pool's own counters at each scrape: pgxpool
// keeps them anyway, so they cost nothing between scrapes.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolConns = prometheus.NewDesc("pollrelay_store_connections",
		"PostgreSQL connections of the store's pool, by state (idle, in_use, constructing).", []string{"state"}, nil)
	poolMax = prometheus.NewDesc("pollrelay_store_connections_max",
		"The most connections the store's pool opens (storage.postgres.max_conns).", nil, nil)
	poolAcquires = prometheus.NewDesc("pollrelay_store_acquires_total",
		"Connections taken from the store's pool.", nil, nil)
	poolWaits = prometheus.NewDesc("pollrelay_store_acquire_waits_total",
		"Takes from the store's pool that had to wait for a connection.", nil, nil)
	poolWaitSeconds = prometheus.NewDesc("pollrelay_store_acquire_wait_seconds_total",
		"Time spent waiting for a connection of the store's pool.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMax, poolAcquires, poolWaits, poolWaitSeconds} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.AcquiredConns()), "in_use")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(st.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(st.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitSeconds, prometheus.CounterValue, st.EmptyAcquireWaitTime().Seconds())
}
