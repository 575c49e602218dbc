package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/cluster"
	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
	"github.com/pollrelay/pollrelay/store/postgres"
)

// openStore opens the store the config names: the PostgreSQL database of
// storage.postgres.url when it is set, else Badger's directory (or
// memory). readOnly opens an existing store to read it, as probe does.
func openStore(cfg *config.Config, readOnly bool, log *slog.Logger) (store.Store, error) {
	if pg := cfg.Storage.Postgres; pg.URL != "" {
		st, err := postgres.Open(postgres.Options{URL: pg.URL, Schema: pg.Schema, MaxConns: pg.MaxConns, Logger: log, ReadOnly: readOnly, Exclusive: !readOnly})
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	if readOnly {
		st, err := badger.OpenReadOnly(cfg.Storage.Path, log)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := badger.Open(badger.Options{Path: cfg.Storage.Path, InMemory: cfg.Storage.InMemory, Logger: log})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// openCluster returns who polls what over st: the shared database's
// members and leases when st is PostgreSQL, with the fence that makes a
// poll's writes commit only under its lease's token; else cluster.Solo,
// where this process holds every lease and nothing needs fencing.
func openCluster(cfg *config.Config, st store.Store, reg prometheus.Registerer, log *slog.Logger) (*cluster.Coordinator, poller.Fence) {
	var backend cluster.Backend = cluster.NewSolo()
	var fence poller.Fence
	if pg, ok := st.(*postgres.Store); ok {
		backend, fence = pg.Cluster(), pg.Fenced
	}
	member := cfg.Cluster.Member
	if member == "" {
		host, _ := os.Hostname()
		member = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	lease := cfg.Cluster.Lease
	if lease <= 0 {
		lease = config.DefaultLease
	}
	c := cluster.New(backend, cluster.Options{Member: member, Lease: lease, Logger: log, Metrics: cluster.NewMetrics(reg)})
	return c, fence
}
