module github.com/smolvmm/smolvmm

go 1.26
