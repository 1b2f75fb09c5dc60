// Package e2e proves the whole product the way an operator runs it: the real kumo binary (built
// with -race) started from a config file, with Telegram and Discord on their protocol-faithful fakes,
// Matrix on a real Dendrite and Lightning on a real regtest network. It holds tests and benchmarks
// only:
//
//	go test -tags goolm -race ./e2e/...                      # end to end, load, faults, privacy
//	go test -tags goolm -race -run '^$' -bench . ./e2e/...   # the figures of the README's Performance section
package e2e
