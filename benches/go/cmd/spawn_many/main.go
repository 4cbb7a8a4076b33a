// Command spawn_many measures the cost of spawning and joining goroutines.
//
// It mirrors gort's examples/spawn_many.rs: N goroutines each do a trivial
// piece of work (write index+1 into their own slot of a pre-allocated slice),
// and are joined with a sync.WaitGroup. With batch > 0 the goroutines are
// spawned in batches of `batch` and the WaitGroup is waited on after each
// batch (bounding how many are live at once); with batch == 0 all N are
// spawned first and then waited for once. The timed region runs from the
// first spawn to the last join. Afterwards every slot is checked so that "ok"
// counts goroutines whose work was actually observed by the joiner.
//
// Usage: spawn_many N [batch]
// Last line: spawn_many: n=<N> ok=<ok> ns_per_goroutine=<float, 1 decimal>
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	n, batch := parseArgs()

	// Allocated (and touched) before timing so the timed region measures
	// goroutine spawn/run/join only, not page faults on the result slice.
	slots := make([]uint64, n)
	for i := range slots {
		slots[i] = 0
	}

	var wg sync.WaitGroup
	work := func(i int) {
		defer wg.Done()
		slots[i] = uint64(i) + 1
	}

	start := time.Now()
	if batch > 0 {
		for lo := 0; lo < n; lo += batch {
			hi := min(lo+batch, n)
			wg.Add(hi - lo)
			for i := lo; i < hi; i++ {
				go work(i)
			}
			wg.Wait()
		}
	} else {
		wg.Add(n)
		for i := 0; i < n; i++ {
			go work(i)
		}
		wg.Wait()
	}
	elapsed := time.Since(start)

	ok := 0
	for i, v := range slots {
		if v == uint64(i)+1 {
			ok++
		}
	}

	nsPer := 0.0
	if n > 0 {
		nsPer = float64(elapsed.Nanoseconds()) / float64(n)
	}
	fmt.Printf("spawn_many: n=%d ok=%d ns_per_goroutine=%.1f\n", n, ok, nsPer)
	if ok != n {
		os.Exit(1)
	}
}

func parseArgs() (n, batch int) {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		usage()
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 {
		usage()
	}
	if len(os.Args) == 3 {
		batch, err = strconv.Atoi(os.Args[2])
		if err != nil || batch < 0 {
			usage()
		}
	}
	return n, batch
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: spawn_many N [batch]")
	os.Exit(2)
}
