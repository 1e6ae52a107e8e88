"""The router: a stateless app that answers launches from an in-memory view of the store."""
