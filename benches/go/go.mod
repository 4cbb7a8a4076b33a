module gort-benches/go

go 1.27
