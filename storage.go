package main

import (
	"log/slog"

	"github.com/pollrelay/pollrelay/config"
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
