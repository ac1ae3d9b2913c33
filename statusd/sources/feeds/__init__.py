"""① Sensor feeds: HTTP ingest, MQTT, polling, exported files and vendor formats → readings."""
