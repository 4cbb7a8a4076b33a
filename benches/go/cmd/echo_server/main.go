// echo_server mirrors gort's examples/echo_server.rs: one goroutine per connection, each
// echoing what it reads. Used by benches/echo_side_by_side.sh with gort's echo_load as the
// load generator for both servers.
//
// Usage: echo_server [addr] (default 127.0.0.1:7979)
package main

import (
	"net"
	"os"
)

func main() {
	addr := "127.0.0.1:7979"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}(c)
	}
}
