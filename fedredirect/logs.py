"""The log set-up, for the command line's modules: it lives in :mod:`shared.logs`."""

from shared.logs import JsonFormatter, setup_logging

__all__ = ["JsonFormatter", "setup_logging"]
