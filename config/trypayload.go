package config

import "fmt"

// tryPayloads runs every subscription's payload program over sample
// events (see subscription.Spec.TryPayload).
func tryPayloads(cfg *Config) error {
	p := &problems{}
	for i := range cfg.Subscriptions {
		if err := cfg.Subscriptions[i].TryPayload(); err != nil {
			p.add(fmt.Sprintf("subscriptions[%d].payload", i), "%v", err)
		}
	}
	return p.err()
}
