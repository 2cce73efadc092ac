package origin

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

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
// where prefix is /fallback/{channel}. Every byte served is counted as
// origin egress.
func (o *Origin) Handler() http.Handler {
	mux := http.NewServeMux()
	p := "/fallback/" + o.cfg.Channel
	mux.HandleFunc("GET "+p+"/latest", func(w http.ResponseWriter, r *http.Request) {
		seq, ok := o.store.last()
		if !ok {
			http.Error(w, "no chunk yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]uint32{"seq": seq})
	})
	mux.HandleFunc("GET "+p+"/manifest/{seq}", func(w http.ResponseWriter, r *http.Request) {
		if c, ok := o.chunk(w, r); ok {
			o.serve(w, c.manifest)
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
		o.serve(w, c.shards[i])
	})
	mux.HandleFunc("GET "+p+"/chunk/{seq}", func(w http.ResponseWriter, r *http.Request) {
		if c, ok := o.chunk(w, r); ok {
			o.serve(w, c.chunk)
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
		o.serve(w, in.data)
	})
	// Browser peers load the page from the tracker and fetch fallback from
	// here, often another origin (host or port): allow that, and let them
	// read the init segment's signature.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", strings.Join([]string{wire.InitSignatureHeader, wire.InitEpochHeader}, ", "))
		mux.ServeHTTP(w, r)
	})
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

func (o *Origin) serve(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	n, _ := w.Write(b)
	o.httpBytes.Add(uint64(n))
}
