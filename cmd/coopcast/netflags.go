package main

import (
	"flag"
	"net"
	"net/url"
	"strings"

	"github.com/coopcast/coopcast/internal/rtc"
)

// iceFlags are the WebRTC network flags of every command that opens
// peer-to-peer links.
type iceFlags struct{ interfaces string }

func (f *iceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.interfaces, "ice-interface", "", "comma-separated network interfaces ICE may use (\"lo\" for loopback-only tests); empty: loopback when the tracker is on loopback, else all but loopback")
}

// config returns the rtc settings. With no --ice-interface and a tracker
// on loopback, ICE stays on loopback too: everyone is on this machine, and
// nothing should leave it.
func (f *iceFlags) config(trackerURL string) rtc.Config {
	var c rtc.Config
	if f.interfaces == "" && isLoopbackURL(trackerURL) {
		c.ICEInterfaces = []string{"lo"}
		return c
	}
	for _, name := range strings.Split(f.interfaces, ",") {
		if name = strings.TrimSpace(name); name != "" {
			c.ICEInterfaces = append(c.ICEInterfaces, name)
		}
	}
	return c
}

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
