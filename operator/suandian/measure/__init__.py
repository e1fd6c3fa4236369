"""Measured energy: jobs' energy from Kepler and DCGM-exporter series in Prometheus.

- :mod:`.series`: raw samples to pieces of constant power (reset-aware counters, gauges,
  gaps), interval arithmetic; pure.
- :mod:`.energy`: a job's IT energy slot by slot, measured where covered, else the
  model, with its provenance; pure.
- :mod:`.supply`: that energy × PUE split over the site's supply slot by slot, green
  first then grid, and by source for the ledger; pure.
- :mod:`.learned`: the power model that learns measured watts per job template; pure.
- :mod:`.prometheus`: the one module that queries (aiohttp, through the providers'
  careful HTTP client).

docs/measurement.md explains the configuration, the provenance and the learned model.
"""
