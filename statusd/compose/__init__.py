"""Compose: an event rendered for one channel, from the templates in alerts/.

The package holds no code of its own: the store reads a delivery's Message (message.py)
where `statusd set` probes it, and must not pull the templates, Jinja2 and structlog
with it (composer.py: 100 ms of a flip's start-up, issue 15).
"""
