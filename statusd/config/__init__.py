"""The configuration, read once at start: leaf types, the line-aware reader, sections, and load."""
