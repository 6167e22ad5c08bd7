"""Command-line verbs, one module each, every one with `add_parser` and `run`."""
