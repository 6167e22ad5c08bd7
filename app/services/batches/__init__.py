"""Batches: many images through the Jobs interface, one engine for the CLI
(`python -m app segment`) and POST /batches.

- inputs.py: arguments (files, folders, globs, s3:// prefixes) -> named inputs;
- manifest.py: manifest.jsonl, on a disk or in a bucket;
- engine.py: `Batch`, every input to its end, bounded in flight, resumable, counted;
- service.py: the HTTP side (input rules, a background task per batch).
"""
