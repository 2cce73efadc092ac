package loadtest

import "math/bits"

// event is one thing that happens at a simulated instant. The fields
// other than at, seq and kind mean what kind says (see the ev constants).
type event struct {
	at   int64  // simulated time, ns from the start
	seq  uint64 // push order: ties run first come, first served
	x    int64
	p, q int32
	c    int32
	kind uint8
	op   uint8
	tree uint8
}

func less(a, b *event) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// eventQueue hands out events in (at, seq) order: the simulator's clock.
//
// It is a timing wheel: buckets of 2^wheelShift ns cover the next
// wheelSize buckets; an event lands unsorted in its bucket, and a bucket
// is turned into a small heap (cur) only when the clock reaches it.
// Events beyond the wheel wait in a heap (far) until it comes round.
// With millions of events in flight a single heap spends its time in
// cache misses; a bucket's events sit together.
type eventQueue struct {
	seq   uint64
	n     int
	curB  int64 // the bucket cur holds
	cur   heap4 // events of bucket curB
	wheel [][]event
	onW   int   // events on the wheel
	far   heap4 // events at or beyond bucket curB+wheelSize
	// free holds emptied bucket arrays by capacity (free[k]: cap 1<<k),
	// so that buckets filling and draining reuse memory instead of
	// asking the collector for gigabytes over a long run.
	free [32][][]event
}

const (
	wheelShift = 16 // 65.5 µs buckets
	wheelSize  = 1 << 15
	wheelMask  = wheelSize - 1
)

func (q *eventQueue) len() int { return q.n }

func (q *eventQueue) push(e event) {
	e.seq = q.seq
	q.seq++
	q.n++
	if q.wheel == nil {
		q.wheel = make([][]event, wheelSize)
	}
	b := e.at >> wheelShift
	switch {
	case b <= q.curB:
		q.pushCur(e) // the current bucket (or, never in practice, the past)
	case b < q.curB+wheelSize:
		q.add(&q.wheel[b&wheelMask], e)
		q.onW++
	default:
		q.far.push(e)
	}
}

// settle makes cur hold the earliest events, moving the clock's bucket
// forward as needed. The queue must not be empty.
func (q *eventQueue) settle() {
	for len(q.cur.h) == 0 {
		q.curB++
		// Far events whose bucket is now within the wheel move into it.
		for len(q.far.h) > 0 && q.far.h[0].at>>wheelShift < q.curB+wheelSize {
			e := q.far.pop()
			if e.at>>wheelShift <= q.curB {
				q.pushCur(e)
			} else {
				b := e.at >> wheelShift
				q.add(&q.wheel[b&wheelMask], e)
				q.onW++
			}
		}
		slot := &q.wheel[q.curB&wheelMask]
		if len(*slot) == 0 {
			if len(q.cur.h) == 0 && q.onW == 0 && len(q.far.h) > 0 {
				// Nothing on the wheel: jump to the far heap's bucket.
				q.curB = q.far.h[0].at>>wheelShift - 1
			}
			continue
		}
		q.onW -= len(*slot)
		// The bucket's slice becomes the heap's backing array: no copy.
		// The emptied one goes back to the free lists (a bucket keeping
		// the largest array it ever held would, over the whole wheel,
		// hold far more than the events in flight).
		q.release(q.cur.h)
		q.cur.h, *slot = *slot, nil
		q.cur.heapify()
	}
}

// pushCur adds e to the current bucket's heap.
func (q *eventQueue) pushCur(e event) {
	q.add(&q.cur.h, e)
	q.cur.up(len(q.cur.h) - 1)
}

// add appends e to a bucket, growing it by powers of two from the free
// lists.
func (q *eventQueue) add(b *[]event, e event) {
	s := *b
	if len(s) == cap(s) {
		c := max(8, 2*cap(s))
		k := bits.TrailingZeros(uint(c))
		var ns []event
		if fl := q.free[k]; len(fl) > 0 {
			ns = fl[len(fl)-1]
			q.free[k] = fl[:len(fl)-1]
		} else {
			ns = make([]event, 0, c)
		}
		ns = append(ns, s...)
		q.release(s)
		s = ns
	}
	*b = append(s, e)
}

// release keeps an array whose capacity is a power of two for reuse.
func (q *eventQueue) release(s []event) {
	c := cap(s)
	if c >= 8 && c&(c-1) == 0 {
		k := bits.TrailingZeros(uint(c))
		q.free[k] = append(q.free[k], s[:0])
	}
}

// pop removes and returns the earliest event. The queue must not be empty.
func (q *eventQueue) pop() event {
	q.settle()
	q.n--
	return q.cur.pop()
}

// peek returns the earliest event's time; the queue must not be empty.
func (q *eventQueue) peek() int64 {
	q.settle()
	return q.cur.h[0].at
}

// heap4 is a 4-ary min-heap of events by (at, seq).
type heap4 struct{ h []event }

func (q *heap4) push(e event) {
	q.h = append(q.h, e)
	q.up(len(q.h) - 1)
}

func (q *heap4) up(i int) {
	e := q.h[i]
	for i > 0 {
		p := (i - 1) / 4
		if !less(&e, &q.h[p]) {
			break
		}
		q.h[i] = q.h[p]
		i = p
	}
	q.h[i] = e
}

func (q *heap4) down(i int) {
	n := len(q.h)
	e := q.h[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if less(&q.h[j], &q.h[m]) {
				m = j
			}
		}
		if !less(&q.h[m], &e) {
			break
		}
		q.h[i] = q.h[m]
		i = m
	}
	q.h[i] = e
}

func (q *heap4) heapify() {
	for i := (len(q.h) - 2) / 4; i >= 0; i-- {
		q.down(i)
	}
}

func (q *heap4) pop() event {
	top := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h = q.h[:n]
	if n > 0 {
		q.down(0)
	}
	return top
}
