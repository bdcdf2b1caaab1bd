"""Annotation quality: agreement between annotators, bias/speed/attention flags per annotator, gold
items and the accuracy on them, stored quality reports with their dashboards, and the annotators'
own flags on items, reliability-weighted labels (``aggregation``: Dawid-Skene) and the quality
rules snapshots and exports apply (``rules``: low gold accuracy, low kappa, flagged annotators, fast
votes); still to come: identity leaks.

``agreement`` (with ``labels``, ``alpha``, ``pairs``, ``resampling``) and ``bias`` (with ``timing``)
are pure numpy/scipy with no Django import; ``selectors`` reads votes from the database and feeds
them in; ``services`` stores a ``QualityReport`` per campaign (``report`` and ``charts`` shape it for
``dashboard``; ``schedule`` decides when a vote queues a recompute, debounced on the report rows); ``gold`` and ``gold_services`` read and write gold answers and pauses; ``flags``
reads the skipped-with-a-reason items for the admins' flags page and API. ``aggregation`` and
``rules`` are pure as well.
"""
