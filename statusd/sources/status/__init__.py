"""① The wanted status: the status file, its edits, its watch, and command arguments → entries."""
