// Package httpserver makes the HTTP server every coopcast command serves
// with (tracker, origin fallback and ingest, demo, load tester), with the
// limits that keep slow or bloated clients from holding it: a client has
// ReadHeaderTimeout to send its request line and headers (a slowloris
// that trickles them is cut off), at most MaxHeaderBytes of them (431
// beyond), and a kept-alive connection that sends nothing is closed
// after IdleTimeout.
//
// There is deliberately no ReadTimeout or WriteTimeout: they would cut
// WebSockets (their deadlines outlive the hijack) and the ingest push,
// whose body is a live stream of unbounded length. Bodies are bounded
// where they are read: no handler but ingest reads one, and ingest
// bounds each box (internal/fmp4.MaxBox).
package httpserver
