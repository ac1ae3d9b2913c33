"""⑤ The website side: status.json, health, and (later) the banner and status page."""
