"""Preference datasets out: formats, filters, streaming, writers and export jobs.

- ``formats``: what a comparison and its votes become in each format (pure).
- ``filters``: which votes and comparisons an export takes, and the checks of a request (pure).
- ``stream``: comparisons with their votes, read in id-ordered chunks in constant memory.
- ``writers`` / ``files``: JSONL, Parquet, CSV and Hugging Face ``datasets`` folders, written to a
  temporary name and renamed; checksums; the zip a folder downloads as (pure).
- ``services`` / ``selectors``: the ``Export`` job: check, record, run inline or in the worker, find its file.
- ``forms`` / ``views`` / ``api`` / ``urls``: the admin page, the download and the REST API.
"""
