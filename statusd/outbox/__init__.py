"""④ The outbox: deliveries stored before they are sent, and the workers that send them.

- `contract`: the Store protocol, what the rest of statusd sees of either store
- `schema`: the tables for both dialects, and their versioned steps (`statusd migrate`)
- `dialect`: where SQLite's and PostgreSQL's SQL differ, in one place
- `records`: the values read back (Delivery, StoredEvent, Planned) and the delivery states
- `queries`: the read-only half of the store (workers, threads, people, web, /readyz)
- `upkeep`: the write guard behind `Store.trouble`, probing, pruning, retraction
- `store`: recording events with their deliveries, and the workers' marks (SQL both share)
- `sqlite`, `postgres` (+ `postgres_rows`): the two stores' connections and transactions
- `transfer`: a store's rows out and in whole (`export-state`, `import-state`)
- `opening`: the configured store; `facade`: AsyncStore, the daemon's calls on the store's thread
- `outcome`: what a failed send or a look-up proves (Presence, may_have_posted)
- `retry`: the backoff
- `threads`: where a post goes in its site's crisis thread
- `worker`: one channel's deliveries, in order, each uncertain send resolved
- `senders`: every channel with its worker; the store watch that wakes them, hourly pruning
"""
