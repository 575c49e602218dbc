package api

import "github.com/pollrelay/pollrelay/subscription"

// checkTarget is every rule a subscription URL from the API must pass:
// https:// under delivery.require_https, and an address the egress guard
// allows.
func (s *Server) checkTarget(raw string) error {
	if s.opts.Control.Config().Delivery.RequireHTTPS {
		if err := subscription.RequireHTTPS(raw); err != nil {
			return err
		}
	}
	return s.checkDestination(raw)
}
