package tracker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the tracker's Prometheus series. Every value is updated from
// real events: joins, leaves, repairs, rejections, and the forest's own
// stats after each event.
type metrics struct {
	peers     *prometheus.GaugeVec
	joins     prometheus.Counter
	leaves    prometheus.Counter
	repairs   prometheus.Counter
	fallback  *prometheus.GaugeVec
	depth     *prometheus.GaugeVec
	rejected  *prometheus.CounterVec
	messages  *prometheus.CounterVec
	relayed   prometheus.Counter
	connected prometheus.Gauge
	demotions *prometheus.CounterVec
	evictions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		peers:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coopcast_peers", Help: "Peers in the channel's forest."}, []string{"channel"}),
		joins:     prometheus.NewCounter(prometheus.CounterOpts{Name: "coopcast_joins_total", Help: "Peers that joined (or resumed)."}),
		leaves:    prometheus.NewCounter(prometheus.CounterOpts{Name: "coopcast_leaves_total", Help: "Peers that left or failed."}),
		repairs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "coopcast_repairs_total", Help: "Peers re-attached in a tree after losing their parent."}),
		fallback:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coopcast_fallback_peers", Help: "Peers on HTTP fallback in at least one tree."}, []string{"channel"}),
		depth:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coopcast_tree_depth", Help: "Deepest peer in each tree (hops from the origin)."}, []string{"channel", "tree"}),
		rejected:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coopcast_rejected_total", Help: "Client requests or messages refused, by reason."}, []string{"reason"}),
		messages:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coopcast_messages_total", Help: "Client messages received, by type."}, []string{"type"}),
		relayed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "coopcast_signals_relayed_total", Help: "Signaling messages relayed between paired peers."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "coopcast_connections", Help: "Open WebSocket connections."}),
		demotions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coopcast_demotions_total", Help: "Peers whose slots were cut, by reason: silent (reported by distinct children; cut to the children that confirmed delivery), corrupt or forged (a child's checked evidence of a bad shard or manifest; made a leaf), flood (distinct neighbours report unasked data; made a leaf), complaints (far past its complaint budget; made a leaf)."}, []string{"reason"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coopcast_evictions_total", Help: "Peers disconnected for cheating, their resume tokens refused for a while, by reason (corrupt, forged, flood, complaints)."}, []string{"reason"}),
	}
	reg.MustRegister(m.peers, m.joins, m.leaves, m.repairs, m.fallback, m.depth, m.rejected, m.messages, m.relayed, m.connected, m.demotions, m.evictions)
	return m
}

func treeLabel(i int) string { return strconv.Itoa(i) }
