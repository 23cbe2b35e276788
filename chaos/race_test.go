//go:build race

package chaos_test

// raceEnabled builds the services with the race detector when the tests
// themselves run with it, as make test does.
const raceEnabled = true
