package main

import "testing"

// A job created processing is polled as processing from its first poll:
// no stay in a state it never had is learned or detected.
func TestRunStartsWhereTheJobIs(t *testing.T) {
	var learned []string
	var stay float64
	r := run([]job{{started: 0, done: 40}}, fixed(15), func(state string, d float64) {
		learned = append(learned, state)
		stay = d
	})
	// Polls at 0, 15, 30 and 45; the one at 45 sees it done.
	if r.requests != 4 || len(r.delays) != 1 || r.delays[0] != 5 {
		t.Errorf("requests %d, delays %v; want 4 requests and one delay of 5s", r.requests, r.delays)
	}
	if len(learned) != 1 || learned[0] != "processing" || stay != 37.5 {
		t.Errorf("learned %v (last stay %vs), want one processing stay of 37.5s", learned, stay)
	}
}
