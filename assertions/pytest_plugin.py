"""pytest plugin: collects regression-case YAML files (filled in by the assertions stage)."""
