"""No real model requests in the analyzer's tests; a loopback server on demand for online judging."""

from helpers.models import _no_model_requests, loopback  # noqa: F401
