// Package wire is the one place coopcast's data-channel byte layouts live:
// stripe fragments and signed chunk manifests. The layouts are described
// at the top of wire.go and in docs/PROTOCOL.md; the browser's
// webclient/js/wire.js reads and writes the same bytes, checked by the
// shared vectors under testdata/vectors.
//
// A sender cuts each shard into fragments with Fragments and sends the
// chunk's manifest (SignManifest) down every tree. A receiver parses a
// manifest (ParseManifest), checks its signature (Manifest.Verify), and can
// then check each fragment on its own as it arrives (VerifyFragment),
// because the manifest carries the SHA-256 of every fragment: a relay
// forwards verified data at once, without waiting for the whole shard.
package wire
