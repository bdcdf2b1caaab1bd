"""Annotation quality: agreement between annotators, bias/speed/attention flags per annotator, and
the annotators' own flags on items (more to come: gold items, identity leaks, dashboards).

``agreement`` (with ``labels``, ``alpha``, ``pairs``, ``resampling``) and ``bias`` (with ``timing``)
are pure numpy/scipy with no Django import; ``selectors`` reads votes from the database and feeds
them in; ``flags`` reads the skipped-with-a-reason items for the admins' flags page and API.

Dashboards (issue 15 item 6) are served from stored results: ``models.QualityReport`` (one row per
campaign, or all votes) is written by ``services.quality_report_compute`` in a background task
(``feedback.tasks.quality_report_execute``) or ``manage.py quality_report``; ``report`` (pure) shapes
the stored figures, ``charts`` (pure) the inline SVG, ``dashboard`` the admins' pages and ``api``
the REST reads. A recompute is asked for by the page when the report misses a vote, never by the
vote path (``services`` says why).
"""
