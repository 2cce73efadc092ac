package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/coopcast/coopcast/origin"
)

// fallbackFlags bound the origin's HTTP fallback: who may read it from a
// web page (CORS), and how much it serves.
type fallbackFlags struct {
	allow      []string
	cap, perIP string
}

func (f *fallbackFlags) register(fs *flag.FlagSet) {
	fs.Func("allow-origin", "web page `ORIGIN` (scheme://host[:port]) whose pages may fetch HTTP fallback from another address (CORS); repeat or comma-separate; * for any page. Default: the --tracker URL's origin, where the watch page is served",
		func(s string) error {
			for _, a := range strings.Split(s, ",") {
				if a = strings.TrimSpace(a); a != "" {
					f.allow = append(f.allow, a)
				}
			}
			return nil
		})
	fs.StringVar(&f.cap, "fallback-cap", "", "cap on all HTTP fallback egress, bits/s (e.g. 20M), or off; beyond it requests get 429 with Retry-After. Default 20 × the stream's bitrate")
	fs.StringVar(&f.perIP, "fallback-per-ip", "", "HTTP fallback one IP address may fetch, bits/s (e.g. 2M), or off (no limit per address, of bytes or of requests; X-Forwarded-For is not trusted: behind a proxy every viewer shares its address). Default 4 × the stream's bitrate")
}

// apply sets the flags' values in cfg.
func (f *fallbackFlags) apply(cfg *origin.Config) error {
	for _, a := range f.allow {
		if !origin.ValidPageOrigin(a) {
			return fmt.Errorf("%w: --allow-origin %q: want scheme://host[:port], e.g. https://watch.example.org, or *", errUsage, a)
		}
	}
	cfg.AllowOrigins = f.allow
	var err error
	if cfg.FallbackCap, err = limitFlag("fallback-cap", f.cap); err != nil {
		return err
	}
	cfg.FallbackPerIP, err = limitFlag("fallback-per-ip", f.perIP)
	if cfg.FallbackPerIP < 0 {
		cfg.FallbackRequests = -1 // nor a request rate: the address is shared, or trusted
	}
	return err
}

// limitFlag reads a bits/s limit: "" the default (0), "off" none (-1).
func limitFlag(name, s string) (int64, error) {
	switch s {
	case "":
		return 0, nil
	case "off":
		return -1, nil
	}
	v, err := parseBitrate(s)
	if err != nil {
		return 0, fmt.Errorf("%w: --%s: %v, or off", errUsage, name, err)
	}
	return v, nil
}
