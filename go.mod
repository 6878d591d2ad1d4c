module github.com/nsqx/nsqx

go 1.26.8

require github.com/BurntSushi/toml v1.6.0

require (
	github.com/golang/snappy v0.0.1 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nsqio/go-nsq v1.1.0 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
