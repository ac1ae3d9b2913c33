"""statusd: tell a library's public, at once and everywhere, whether it is open.

The package reads as the pipeline; each stage imports only from the ones above it
(tests/test_layout.py checks it, function-level and TYPE_CHECKING imports included):

    config/     ⓪ statusd.yaml → frozen values: types, the line-aware reader, sections, channel options, wording
    sources/    ① status/ (status.yaml: read whole, watched, edited, the wanted-status interface) and
                  feeds/ (HTTP ingest, MQTT, polling, exported files, vendor formats, start-up)
    sensors/    ② readings → smoothed figures, bands, opening hours, gate counters; rules.py and
                  intake.py beside them turn wanted vs announced, and readings, into events
    compose/    ③ event × channel → Message, from the templates and labels in alerts/
    channels/   ⑤ one module per service with typed Options; the explicit registry (loading.py hands it to config)
    outbox/     ④ the store, retries, budgets, health, one worker per channel (it drives the channels); announcer.py
    web/        the public projection (page, status.json, SSE, Atom, iCalendar, CAP) and ops.py (/readyz, /metrics)
    desk/       the doors for staff: accounts, tokens, the desk API and pages
    commands/   one module per subcommand, local or remote; app.py wires the stages; replay.py replays a day

Shared by every stage: model.py and events.py (the vocabulary), errors.py, safetext.py,
files.py, tasks.py, logs.py, metrics.py.
"""

__version__ = "0.1.0"
