package testbin

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Proc is one process of a test, in a process group of its own, its
// output in a log file. The test's cleanup kills the group (after a
// SIGCONT, should it be stopped) and waits for it; if the test failed, it
// logs the tail of the process's log.
type Proc struct {
	Name string
	Log  string // path of its stdout and stderr
	cmd  *exec.Cmd
	done chan struct{}
}

// LogsEnv names a folder where every Proc's log is copied when its test
// ends, pass or fail.
const LogsEnv = "COOPCAST_FAULT_LOGS"

// Start starts bin with args as process name.
func Start(t testing.TB, bin, name string, args ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	f.Close()
	p := &Proc{Name: name, cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Signal(syscall.SIGCONT)
		p.Signal(syscall.SIGKILL)
		<-p.done
		if dir := os.Getenv(LogsEnv); dir != "" {
			if b, err := os.ReadFile(logPath); err == nil {
				os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log"), b, 0o644)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("--- %s (tail of its log)\n%s", name, b)
		}
	})
	return p
}

// Signal sends sig to p's process group, unless p has exited and been
// waited for (its id may then be another's).
func (p *Proc) Signal(sig syscall.Signal) {
	if !p.Exited() {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Exited reports whether p has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when p has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// JoinedID reads a peer's id from the "joined" line of its JSON log
// (--log-format json); false until there is one.
func (p *Proc) JoinedID() (uint64, bool) {
	f, err := os.Open(p.Log)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Msg  string `json:"msg"`
			Peer uint64 `json:"peer"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "joined" {
			return l.Peer, true
		}
	}
	return 0, false
}
