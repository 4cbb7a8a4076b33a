// Command ctxswitch measures goroutine-to-goroutine handoff over an
// unbuffered channel: the classic BenchmarkContextSwitch.
//
// It mirrors gort's context-switch benchmark: a sender goroutine sends N
// empty struct{} tokens over an unbuffered channel to a receiver goroutine.
// Both are released together by closing a start channel, and the time from
// that close until both have finished (sync.WaitGroup) is divided by N.
// At GOMAXPROCS=1 every token is a park/ready/switch pair on one P; at
// GOMAXPROCS>1 the two goroutines may run on different Ps and hand off
// through the scheduler's wakeup path.
//
// Usage: ctxswitch N
// Last line: ctxswitch: n=<N> maxprocs=<GOMAXPROCS> ns_per_switch=<float, 1 decimal>
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		usage()
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		usage()
	}

	start := make(chan struct{})
	tokens := make(chan struct{}) // unbuffered: every send is a handoff
	var wg sync.WaitGroup
	wg.Add(2)

	go func() { // sender
		defer wg.Done()
		<-start
		for i := 0; i < n; i++ {
			tokens <- struct{}{}
		}
	}()
	go func() { // receiver
		defer wg.Done()
		<-start
		for i := 0; i < n; i++ {
			<-tokens
		}
	}()

	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)

	fmt.Printf("ctxswitch: n=%d maxprocs=%d ns_per_switch=%.1f\n",
		n, runtime.GOMAXPROCS(0), float64(elapsed.Nanoseconds())/float64(n))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ctxswitch N")
	os.Exit(2)
}
