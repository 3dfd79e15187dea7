"""No real model requests in these tests; a loopback server on demand (helpers.models)."""

from helpers.models import _no_model_requests, loopback  # noqa: F401
