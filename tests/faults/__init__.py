"""Fault tests: SIGKILLs, store faults and channel faults against the real daemon process."""
