package fmp4

import (
	"encoding/binary"
	"fmt"
)

// maxDepth bounds how deep boxes may nest in a moov or a moof, and
// maxBoxes how many the check below may visit in one. Real ones nest
// about 8 deep (moov/trak/mdia/minf/stbl/stsd/avc1/avcC) and hold tens
// of boxes. mp4ff decodes nesting recursively, in time that grows with
// the square of the depth: a 1.6 MB moov of 200,000 nested boxes kept it
// busy for more than ten minutes.
const (
	maxDepth = 32
	maxBoxes = 100_000
)

// childOffsets are where in a box's payload a decoder may start reading
// children: 0 (containers), 4 (meta), 8 (stsd, dref: version, flags,
// count), 28 (audio sample entries), 78 (visual sample entries), and a
// few more of the sample entry layouts.
var childOffsets = [...]int{0, 4, 8, 16, 20, 28, 36, 44, 64, 78, 86}

// checkNesting refuses b (one or more boxes) if any chain of boxes in it
// nests deeper than maxDepth. It does not know which box types are
// containers: it looks for a plausible box (a size that fits, a type of
// four printable characters) at each offset a decoder could start
// children at, so it over-counts rather than misses; positions are
// visited once, which can under-count a chain by at most half.
func checkNesting(b []byte) error {
	seen := map[int]struct{}{}
	return walkNesting(b, 0, 1, seen)
}

func walkNesting(b []byte, at, depth int, seen map[int]struct{}) error {
	for len(b) >= 8 {
		size, hlen := uint64(binary.BigEndian.Uint32(b)), 8
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return nil
			}
			size, hlen = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < uint64(hlen) || size > uint64(len(b)) || !fourCC(b[4:8]) {
			return nil // not a box: payload, not children
		}
		if _, ok := seen[at]; ok {
			return nil
		}
		if depth > maxDepth {
			return fmt.Errorf("%w: boxes nest more than %d deep (in a %q)", ErrMalformed, maxDepth, printable(string(b[4:8])))
		}
		if len(seen) >= maxBoxes {
			return fmt.Errorf("%w: more than %d boxes", ErrMalformed, maxBoxes)
		}
		seen[at] = struct{}{}
		payload := b[hlen:size]
		for _, off := range childOffsets {
			if off+8 > len(payload) {
				break
			}
			if err := walkNesting(payload[off:], at+hlen+off, depth+1, seen); err != nil {
				return err
			}
		}
		b, at = b[size:], at+int(size)
	}
	return nil
}

// fourCC: a box type is four printable characters (© is 0xa9).
func fourCC(t []byte) bool {
	for _, c := range t {
		if (c < 0x20 || c > 0x7e) && c != 0xa9 {
			return false
		}
	}
	return true
}

// firstBoxLen is the length of the box that b starts with (as box read
// it), or len(b) if its header does not say.
func firstBoxLen(b []byte) int {
	if len(b) < 8 {
		return len(b)
	}
	size := uint64(binary.BigEndian.Uint32(b))
	if size == 1 && len(b) >= 16 {
		size = binary.BigEndian.Uint64(b[8:])
	}
	if size < 8 || size > uint64(len(b)) {
		return len(b)
	}
	return int(size)
}
