package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// helpRequest is what parse returns for -h, -help or --help: run prints
// the command's help to standard output and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (helpRequest) Error() string { return "help requested" }

func (helpRequest) Is(target error) bool { return target == flag.ErrHelp }

// printFlags lists fs's flags the way the README writes them: --name
// TYPE, then the usage and the default. A flag whose usage is empty is a
// hidden alias kept for old command lines.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage == "" {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		usage = strings.ReplaceAll(usage, "\n", "\n    \t")
		fmt.Fprintf(w, "    \t%s", usage)
		if def := f.DefValue; def != "" && def != "0" && def != "false" && def != "0s" && def != "[]" {
			if name == "string" {
				def = fmt.Sprintf("%q", def)
			}
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintln(w)
	})
}

// version is what 'coopcast version' prints: the module version, and the
// VCS revision the binary was built from (and whether the tree had
// uncommitted changes), from the build information Go stamps in.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "coopcast: no build information in this binary (" + runtime.Version() + ")"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	out := "coopcast " + v
	if rev == "" {
		out += ", revision unknown (built without VCS stamping, e.g. by go run or go test)"
	} else {
		out += ", revision " + rev
		if at != "" {
			out += " (" + at + ")"
		}
		if modified == "true" {
			out += ", with uncommitted changes"
		}
	}
	return out + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
