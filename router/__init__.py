"""The router: a stateless app that answers launches from an in-memory view of the store."""

import sys

# httpx, the proxy's client, imports its command-line interface whenever click, rich and
# pygments happen to be installed (test tools bring them): 4.8 MB of a router's RSS for code
# it never runs (docs/benchmarks.md). None in sys.modules makes that one import fail, which
# httpx expects (it then goes without its CLI); a process that imported it already keeps it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
