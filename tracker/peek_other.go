//go:build !unix

package tracker

import (
	"errors"
	"net"
)

var errNoPeek = errors.New("cannot wait for readability")

// awaitReadable cannot wait here: the socket is taken up at once.
func awaitReadable(net.Conn) error { return errNoPeek }
