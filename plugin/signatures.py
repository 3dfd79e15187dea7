"""A stable import path: ``tracemend.signatures`` is :mod:`tracemend.analyze.signatures` (benchmarks use it)."""

from tracemend.analyze.signatures import (  # noqa: F401
    ERROR_STATUS_TYPE,
    FAILED_ASSERTION_TYPE,
    MAX_TEMPLATE_CHARS,
    PLACEHOLDER,
    SIGNATURE_VERSION,
    clear_caches,
    merge_templates,
    signature_from_dict,
    signature_id,
    signature_of,
    template,
    template_uncached,
)
