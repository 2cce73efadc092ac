package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/coopcast/coopcast/internal/channelid"
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

// trackerURL checks a --tracker value before anything connects: host:port
// alone gets http://, and anything but an http(s) URL with a host is a
// usage error that shows the form wanted.
func trackerURL(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: --tracker is required, e.g. --tracker http://127.0.0.1:8080", errUsage)
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: --tracker %q is not a URL; want http://HOST:PORT, https://HOST or HOST:PORT", errUsage, s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: --tracker %q: the scheme must be http or https", errUsage, s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: --tracker %q: want the tracker's base URL, without ?query or #fragment", errUsage, s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%w: --tracker %q: port must be 1–65535", errUsage, s)
		}
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// checkChannel checks a --channel value with the tracker's own rule.
func checkChannel(id string) error {
	if id == "" {
		return fmt.Errorf("%w: --channel is required", errUsage)
	}
	if err := channelid.Check(id); err != nil {
		return fmt.Errorf("%w: --channel: %v", errUsage, err)
	}
	return nil
}

// check refuses --ice-interface names this machine does not have, and
// lists the ones it has.
func (f *iceFlags) check() error {
	for _, name := range strings.Split(f.interfaces, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if _, err := net.InterfaceByName(name); err != nil {
			var have []string
			if ifs, err := net.Interfaces(); err == nil {
				for _, i := range ifs {
					have = append(have, i.Name)
				}
			}
			return fmt.Errorf("%w: --ice-interface: this machine has no interface %q (it has %s)", errUsage, name, strings.Join(have, ", "))
		}
	}
	return nil
}

// iceNote says, for the demo's banner, which addresses the origin and
// native peers offer to WebRTC peers, and what that means for browsers.
func iceNote(c rtc.Config) string {
	var addrs []string
	loopbackOnly := true
	lan := "" // an interface to suggest for a LAN
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if lan == "" && i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagUp != 0 {
			lan = i.Name
		}
		chosen := len(c.ICEInterfaces) == 0 && i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagUp != 0
		for _, n := range c.ICEInterfaces {
			chosen = chosen || n == i.Name
		}
		if !chosen {
			continue
		}
		as, _ := i.Addrs()
		for _, a := range as {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() {
				addrs = append(addrs, ipn.IP.String())
				loopbackOnly = loopbackOnly && ipn.IP.IsLoopback()
			}
		}
	}
	if len(addrs) == 0 {
		return "the chosen interfaces have no address: peers get the stream over HTTP fallback only"
	}
	s := "the origin and native peers offer " + strings.Join(addrs, ", ")
	if loopbackOnly {
		s += " (loopback): browsers and peers on this machine only"
		if lan != "" {
			s += ".\n          For viewers on other machines: --listen 0.0.0.0:8080 --ice-interface " + lan
		}
	}
	return s
}
