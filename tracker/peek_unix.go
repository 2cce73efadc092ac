//go:build unix

package tracker

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// errNoPeek: the connection cannot be waited on here; take it up at once.
var errNoPeek = errors.New("cannot wait for readability")

// awaitReadable waits until c has bytes to read (without reading them),
// its read deadline passes (an error), or the peer closed it (io.EOF).
func awaitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errNoPeek
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return errNoPeek
	}
	var b [1]byte
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case e == syscall.EAGAIN || e == syscall.EINTR:
			return false // not yet: the poller waits for readability
		case e != nil:
			perr = e
		case n == 0:
			perr = io.EOF
		}
		return true
	})
	if err != nil {
		return err
	}
	return perr
}
