package config

import (
	"reflect"

	"github.com/pollrelay/pollrelay/internal/check"
)

// liveStorageKeys are the storage keys a running process applies on
// reload: everything else under storage: names the store it has open.
var liveStorageKeys = map[string]bool{"retention": true}

// RestartKeys lists, by their path in the file, the keys whose value in
// next differs from running and that a running process cannot apply: the
// listener and the store are opened once, the log handler is built once,
// and the delivery timings are handed to the notifier and the API at start.
func RestartKeys(running, next *Config) []string {
	var out []string
	if running.Listen != next.Listen {
		out = append(out, "listen")
	}
	rv, nv := reflect.ValueOf(running.Storage), reflect.ValueOf(next.Storage)
	for _, f := range check.Fields(rv.Type()) {
		if liveStorageKeys[f.Name] {
			continue
		}
		if !reflect.DeepEqual(rv.FieldByIndex(f.Index).Interface(), nv.FieldByIndex(f.Index).Interface()) {
			out = append(out, "storage."+f.Name)
		}
	}
	if running.Cluster.Member != next.Cluster.Member {
		out = append(out, "cluster.member")
	}
	if running.Cluster.Lease != next.Cluster.Lease {
		out = append(out, "cluster.lease")
	}
	if !reflect.DeepEqual(running.Compat, next.Compat) {
		out = append(out, "compat")
	}
	if running.Log.Format != next.Log.Format {
		out = append(out, "log.format")
	}
	if running.Delivery.ShutdownGrace != next.Delivery.ShutdownGrace {
		out = append(out, "delivery.shutdown_grace")
	}
	if running.Delivery.RotationOverlap != next.Delivery.RotationOverlap {
		out = append(out, "delivery.rotation_overlap")
	}
	return out
}
