"""statusd: tell a library's public, at once and everywhere, whether it is open.

The package reads as the pipeline; each stage imports only from the ones above it
(tests/test_layout.py checks it):

    config/     statusd.yaml → frozen values: types, reader, sections, options, wording (alerts/labels.yaml)
    sources/    ① status/ (status.yaml: read, edit) and feeds/ (HTTP, MQTT, poll, file, vendors, start)
    sensors/    ② readings → smoothed figures, bands, hours, gates; rules.py and intake.py beside them
    compose/    ③ event × channel → Message, from the templates in alerts/
    channels/   ⑤ one module per service, typed Options, the explicit registry; loading.py gives config it
    outbox/     ④ the store, retries, one worker per channel (it drives the channels); announcer.py
    web/        the public projection: page, status.json, SSE, Atom, iCalendar, CAP
    commands/   one module per subcommand; app.py wires the stages; replay.py replays a day
"""

__version__ = "0.1.0"
