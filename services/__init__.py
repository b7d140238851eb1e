"""HuleEdu services, each imported as ``services.<name>`` from the repository root."""
