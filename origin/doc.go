// Package origin is the root of every tree: it takes the live stream from
// a Source, cuts it into chunks, erasure-codes each chunk into M stripes
// (k of which rebuild it), signs a manifest per chunk with the channel's
// Ed25519 key, and sends stripe i with its manifest to its children in
// tree i. It keeps the last chunks to serve peers over HTTP as the last
// resort (fallback), and counts every byte it sends either way. Fallback
// serves only requests with a ticket the tracker minted (with the key the
// origin sends in its publish; internal/ticket), within per-address
// budgets and a cap on all fallback egress, with CORS for the configured
// page origins.
//
//	o, _ := origin.New(origin.Config{TrackerURL: u, Channel: "demo", PublishToken: t, Source: src, Bitrate: 500_000})
//	http.Handle("/fallback/", o.Handler())
//	o.Run(ctx)
package origin
