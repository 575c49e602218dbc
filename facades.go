package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pollrelay/pollrelay/compat"
	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/subscription"
)

// facadeListener is a vendor-shaped API served on its own address.
type facadeListener struct {
	vendor string
	ln     net.Listener
	srv    *http.Server
}

// openFacades builds cfg's vendor-shaped APIs over the management API: the
// ones without their own listen are mounted on main's mux beside it (their
// paths never start with /v1/, /ui or pollrelay's own), the others get a
// listener each. On an error the listeners opened are closed.
func openFacades(cfg *config.Config, apiSrv compat.Subscriptions, subs *subscription.Registry, main http.Handler, log *slog.Logger) (http.Handler, []facadeListener, error) {
	if len(cfg.Compat) == 0 {
		return main, nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/", main)
	var own []facadeListener
	fail := func(err error) (http.Handler, []facadeListener, error) {
		for _, f := range own {
			f.ln.Close()
		}
		return nil, nil, err
	}
	for _, c := range cfg.Compat {
		f, err := compat.New(compat.Options{Config: c, API: apiSrv, Registry: subs, Logger: log})
		if err != nil {
			return fail(err)
		}
		if c.Listen == "" {
			for _, p := range f.Patterns() {
				mux.Handle(p, f)
			}
			continue
		}
		ln, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return fail(fmt.Errorf("compat %s: listen on %s: %w", c.Vendor, c.Listen, err))
		}
		own = append(own, facadeListener{vendor: c.Vendor, ln: ln, srv: &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}})
	}
	return mux, own, nil
}

// serve runs the facade's server until it is shut down; a failure before
// that is logged, as the management API on `listen` goes on.
func (f facadeListener) serve(log *slog.Logger) {
	log.Info("vendor-shaped API listening", "vendor", f.vendor, "listen", f.ln.Addr().String())
	if err := f.srv.Serve(f.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("vendor-shaped API stopped", "vendor", f.vendor, "error", err.Error())
	}
}

// FacadeAddr is the address vendor's API answers on: its own, or `listen`.
func (b *Bridge) FacadeAddr(vendor string) string {
	for _, f := range b.facades {
		if f.vendor == vendor {
			return f.ln.Addr().String()
		}
	}
	return b.Addr()
}
