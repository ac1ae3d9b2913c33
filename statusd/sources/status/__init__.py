"""① The wanted status: the status file, its edits, its watch, and command arguments → entries.

- `file.py`    status.yaml → Wanted, every problem with its line and field
- `bounds.py`  the file bounded before it is parsed: a plain file, a size limit, a sane tree
- `text.py`    what a message may hold, and how much of a bad value an error may quote
- `times.py`   local times: DST gaps refused, repeated times take the first
- `edit.py`    one entry changed in place, comments kept, checked, written atomically
- `lock.py`    the status file's lock, only ever tried without blocking
- `entry.py`   `statusd set` arguments → one checked entry
- `watch.py`   the daemon's side: read whole and settled, off the loop; pushes written by one writer
"""
