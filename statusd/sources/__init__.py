"""Sources: what turns the outside world into typed values (the status file, sensor feeds)."""
