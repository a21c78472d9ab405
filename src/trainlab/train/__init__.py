"""Training core: device-resident data, fit/evaluate, metrics, batched models."""
