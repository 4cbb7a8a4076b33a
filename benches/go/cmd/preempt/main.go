// Go's twin of examples/preempt.rs: one call-free spinner per P beside a main goroutine that
// sleeps 50 ms; Go's asynchronous preemption (sysmon + SIGURG) lets main wake on time.
//
//	go run ./cmd/preempt   (GOMAXPROCS=1 or 2)
package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func spin(stop *atomic.Bool) {
	t := time.Now()
	x := uint64(0)
	for !stop.Load() && time.Since(t) < 2*time.Second {
		for i := uint64(0); i < 1000; i++ {
			x = x*31 + i
		}
	}
	_ = x
}

func main() {
	var stop atomic.Bool
	var count atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			count.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); spin(&stop) }()
	}
	time.Sleep(5 * time.Millisecond)
	t := time.Now()
	time.Sleep(50 * time.Millisecond)
	woke := time.Since(t)
	stop.Store(true)
	wg.Wait()
	fmt.Printf("counter: %d sleeps of 1 ms done meanwhile\n", count.Load())
	fmt.Printf("preempt: mode=go maxprocs=%d main woke after %d ms\n", runtime.GOMAXPROCS(0), woke.Milliseconds())
}
