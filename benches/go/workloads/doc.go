// Package workloads holds the Go twins of gort's comparison suite
// (benches/benches/compare/*.rs): the same workloads with the same batch sizes,
// as `go test -bench` benchmarks. One benchmark iteration (b.N counts them) is one
// batch, exactly as one criterion iteration is on the Rust side; each benchmark
// reports "ns/unit", the time per operation of the batch (per token, message,
// select, lock/unlock, goroutine or sleep), which benches/report.py sets beside
// criterion's figures.
//
// Run by benches/compare.sh:
//
//	go test -c -o target/go-bench/workloads.test ./workloads
//	target/go-bench/workloads.test -test.run '^$' -test.bench . -test.cpu 1,2
package workloads
