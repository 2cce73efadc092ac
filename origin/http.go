package origin

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/coopcast/coopcast/internal/wire"
)

// Handler serves HTTP fallback, mounted at the path of FallbackURL:
//
//	GET {prefix}/latest             {"seq": n} of the newest chunk
//	GET {prefix}/manifest/{seq}     the signed manifest message
//	GET {prefix}/shard/{seq}/{i}    shard i of chunk seq
//	GET {prefix}/chunk/{seq}        the whole chunk (plain-HTTP baseline)
//	GET {prefix}/init               the init segment, if the source has one,
//	                                signed in the X-Coopcast-Signature header
//	                                for the epoch in X-Coopcast-Epoch
//
// where prefix is /fallback/{channel}. Every request needs the peer's
// ticket from the tracker in the X-Coopcast-Ticket header (401 without a
// valid one); each IP address has a budget of requests and bytes, and the
// origin a cap on all fallback egress (429 with Retry-After beyond them);
// CORS answers only the allowed page origins (Config.AllowOrigins).
// Every byte served is counted as origin egress.
func (o *Origin) Handler() http.Handler {
	mux := http.NewServeMux()
	p := "/fallback/" + o.cfg.Channel
	mux.HandleFunc("GET "+p+"/latest", func(w http.ResponseWriter, r *http.Request) {
		seq, ok := o.store.last()
		if !ok {
			http.Error(w, "no chunk yet", http.StatusNotFound)
			return
		}
		b, _ := json.Marshal(map[string]uint32{"seq": seq})
		o.serveAs(w, r, "application/json", b)
	})
	mux.HandleFunc("GET "+p+"/manifest/{seq}", func(w http.ResponseWriter, r *http.Request) {
		if c, ok := o.chunk(w, r); ok {
			o.serve(w, r, c.manifest)
		}
	})
	mux.HandleFunc("GET "+p+"/shard/{seq}/{i}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := o.chunk(w, r)
		if !ok {
			return
		}
		i, err := strconv.Atoi(r.PathValue("i"))
		if err != nil || i < 0 || i >= len(c.shards) {
			http.Error(w, "shard index out of range", http.StatusBadRequest)
			return
		}
		o.serve(w, r, c.shards[i])
	})
	mux.HandleFunc("GET "+p+"/chunk/{seq}", func(w http.ResponseWriter, r *http.Request) {
		if c, ok := o.chunk(w, r); ok {
			o.serve(w, r, c.chunk)
		}
	})
	mux.HandleFunc("GET "+p+"/init", func(w http.ResponseWriter, r *http.Request) {
		in := o.init.Load()
		if in == nil {
			http.Error(w, "this stream has no init segment", http.StatusNotFound)
			return
		}
		w.Header().Set(wire.InitSignatureHeader, base64.StdEncoding.EncodeToString(in.sig))
		w.Header().Set(wire.InitEpochHeader, strconv.FormatUint(in.epoch, 10))
		o.serve(w, r, in.data)
	})
	// Browser peers load the page from the tracker and may fetch fallback
	// from here, another origin (host or port): the guard answers CORS
	// for the allowed page origins, and checks tickets and budgets.
	return o.guard.wrap(mux)
}

func (o *Origin) chunk(w http.ResponseWriter, r *http.Request) (stored, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 32)
	if err != nil {
		http.Error(w, "bad chunk number", http.StatusBadRequest)
		return stored{}, false
	}
	c, ok := o.store.get(uint32(seq))
	if !ok {
		http.Error(w, "chunk not kept (too old or not yet cut)", http.StatusNotFound)
		return stored{}, false
	}
	return c, true
}

func (o *Origin) serve(w http.ResponseWriter, r *http.Request, b []byte) {
	o.serveAs(w, r, "application/octet-stream", b)
}

// serveAs sends b if the client's address and the origin's cap have room
// for it (429 otherwise), and counts it as origin egress.
func (o *Origin) serveAs(w http.ResponseWriter, r *http.Request, ctype string, b []byte) {
	if wait, capped, ok := o.guard.send(clientIP(r), len(b), time.Now()); !ok {
		if capped {
			o.limitedCap.Add(1)
			tooMany(w, wait, "the origin is at its HTTP fallback capacity")
		} else {
			o.limitedIP.Add(1)
			tooMany(w, wait, "your address is over its HTTP fallback bandwidth")
		}
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	n, _ := w.Write(b)
	o.httpBytes.Add(uint64(n))
}
