// mutex mirrors gort's examples/mutex_contention.rs: 8 goroutines each lock and unlock one
// shared sync.Mutex N/8 times, incrementing a plain counter inside; reports the cost of one
// lock/unlock pair (total time / N) and checks the counter.
//
// Usage: mutex N
// Last line: mutex_contention: ops=<N> goroutines=8 maxprocs=<P> ns_per_op=<float>
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const workers = 8

func main() {
	n := 8_000_000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad N:", err)
			os.Exit(2)
		}
		n = v
	}
	per := n / workers
	var mu sync.Mutex
	counter := 0
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if counter != per*workers {
		fmt.Fprintf(os.Stderr, "counter %d, want %d\n", counter, per*workers)
		os.Exit(1)
	}
	fmt.Printf("mutex_contention: ops=%d goroutines=%d maxprocs=%d ns_per_op=%.1f\n",
		per*workers, workers, runtime.GOMAXPROCS(0), float64(elapsed.Nanoseconds())/float64(per*workers))
}
