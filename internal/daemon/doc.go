// Package daemon is the command-line skeleton that nsqd, nsqlookupd and
// nsqadmin share: signals, option layers, -h, --version, the logger and
// the exit code.
//
// A command describes itself with an App: its name, usage text and
// cliconfig.Layers, plus four functions for what differs between daemons
// (binding its flags to a fresh configuration, validating it, the logger's
// options, starting the server). App.Serve then
//
//   - applies the command line, the environment and the --config file
//     (cliconfig.Layers.Apply), never reading --version from the last two;
//   - on -h or --help prints the usage text and the flags and returns 0;
//   - on --version prints the version line and returns 0, even when the
//     rest of the configuration is invalid;
//   - otherwise validates, builds the logger (internal/logging) on stderr
//     and runs the daemon until its context ends, returning 0 after a clean
//     shutdown;
//   - on any error writes it to stderr, one "<name>: " line per line of the
//     error (Validate joins one error per bad option), and returns 1.
//
// App.Main is Serve with the process's environment and a context that
// SIGINT or SIGTERM ends. The package starts no goroutines; the Server's
// Run, called on Serve's goroutine, owns the daemon's.
package daemon
