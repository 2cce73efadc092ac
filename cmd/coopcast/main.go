// Command coopcast is the one binary of coopcast: the demo (no arguments),
// and the tracker, origin, peer and loadtest roles as subcommands. It only
// parses flags and wires packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: its one-line summary and its entry point,
// which parses args and runs until ctx ends.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"demo":     {"tracker + origin + web page in one process (the default)", runDemo},
	"tracker":  {"run a tracker: forest, signaling, HTTP API, metrics", runTracker},
	"origin":   {"publish a live stream into the swarm", runOrigin},
	"peer":     {"watch and relay a channel as a native peer", runPeer},
	"loadtest": {"run a flash-crowd scenario and report the measures", runLoadtest},
}

// errUsage marks an error in the command line: exit status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := "demo"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	switch {
	case name == "version" || (name == "demo" && len(args) > 0 && args[0] == "--version"):
		fmt.Fprintln(stdout, version())
		return 0
	case name == "help" && (len(args) == 0 || args[0] == "help" || args[0] == "version"):
		usage(stdout)
		return 0
	case name == "help":
		// coopcast help COMMAND: the command's own help.
		if _, ok := commands[args[0]]; !ok {
			fmt.Fprintf(stderr, "coopcast help: unknown command %q\n\n", args[0])
			usage(stderr)
			return 2
		}
		name, args = args[0], []string{"--help"}
	case name == "demo" && len(args) > 0 && isHelpFlag(args[0]):
		// coopcast --help: the overview, then the flags of the demo, which
		// is what 'coopcast' alone runs.
		usage(stdout)
		fmt.Fprintln(stdout)
		args = []string{"--help"}
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "coopcast: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	err := cmd.run(ctx, args, stdout, stderr)
	var help helpRequest
	var code exitError
	switch {
	case errors.As(err, &help):
		help.fs.SetOutput(stdout)
		help.fs.Usage()
		return 0
	case errors.As(err, &code):
		if code.err != nil {
			fmt.Fprintf(stderr, "coopcast %s: %v\n", name, code.err)
		}
		return code.code
	case err == nil, errors.Is(err, context.Canceled):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "coopcast %s: %v\n", name, strings.TrimPrefix(err.Error(), "usage: "))
		fmt.Fprintf(stderr, "Run 'coopcast help %s' for its flags.\n", name)
		return 2
	default:
		fmt.Fprintf(stderr, "coopcast %s: %v\n", name, err)
		return 1
	}
}

// exitError ends a command with a given exit status (and err, if not
// nil, printed first).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "--h" }

func usage(w io.Writer) {
	fmt.Fprintln(w, "coopcast: live streaming to a flash crowd, carried by the audience.")
	fmt.Fprintln(w, "\nUsage: coopcast [COMMAND] [flags]   (no command: demo)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "help", "this text, or 'help COMMAND' for a command's flags")
	fmt.Fprintf(w, "  %-9s %s\n", "version", "the version and source revision of this binary (also --version)")
	fmt.Fprintln(w, "\nRun 'coopcast help COMMAND' or 'coopcast COMMAND --help' for a command's flags.")
}

// newFlags returns a FlagSet that reports errors instead of exiting and
// prints nothing itself (run prints the one message); its usage text,
// printed by run on --help, starts with the command's synopsis. The
// stderr argument is kept for the commands' signatures; help goes to
// standard output.
func newFlags(name, synopsis string, _ io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("coopcast "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: coopcast %s\n\n%s\n\nFlags:\n", name, synopsis)
		printFlags(w, fs)
	}
	return fs
}

// parse parses args, turning a bad flag into errUsage and a request for
// help into a helpRequest. Leftover arguments are an error too.
func parse(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {} // flag calls it on every error; run prints instead
	err := fs.Parse(args)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return helpRequest{fs}
		}
		msg := err.Error()
		// flag names a flag with one dash; the help and README use two.
		msg = strings.Replace(msg, "defined: -", "defined: --", 1)
		msg = strings.Replace(msg, "argument: -", "argument: --", 1)
		msg = strings.Replace(msg, "flag -", "flag --", 1)
		return fmt.Errorf("%w: %s", errUsage, msg)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// logFlags are the logging flags every command has.
type logFlags struct{ format, level string }

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level must be debug, info, warn or error, got %q", errUsage, l.level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format must be text or json, got %q", errUsage, l.format)
}
