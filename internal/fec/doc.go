// Package fec splits a chunk into M erasure-coded shards, any k of which
// rebuild it: k data shards (the chunk, zero-padded to a multiple of k)
// and M−k Reed–Solomon parity shards, computed by klauspost/reedsolomon.
// Shard i travels down tree i; a peer that lost up to M−k of them still
// plays, and a relaying peer can regenerate a shard it never received.
//
//	c, _ := fec.New(3, 4)
//	shards, _ := c.Encode(chunk)           // 4 shards of ShardSize(len(chunk), 3) bytes
//	shards[1] = nil                        // lost
//	chunk2, _ := c.Reconstruct(shards, len(chunk))
package fec
