// Package backoff is the reconnect policy of every coopcast client that
// loops on a dead tracker or origin: jittered exponential backoff that
// resets after a connection that lasted, and an Outage that says when a
// loss is worth a log line (lost, still down every 30 s, back) so that a
// long outage is not one line per attempt.
//
// Both are pure: the caller passes the time, and Backoff takes its
// randomness from a function, so tests give both and need no sleeps.
//
//	b := backoff.Backoff{}           // 250 ms doubling to 10 s, equal jitter
//	for {
//		start := time.Now()
//		err := dial()
//		if time.Since(start) >= b.LastedAfter() { b.Reset() }
//		time.Sleep(b.Next())
//	}
package backoff
