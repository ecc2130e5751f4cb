"""The programs: command line, daemon, scheduled jobs, config and the wiring built once from it."""
