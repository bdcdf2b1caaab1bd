"""Annotation quality: agreement between annotators, bias/speed/attention flags per annotator, and
the annotators' own flags on items (more to come: gold items, identity leaks, dashboards).

``agreement`` (with ``labels``, ``alpha``, ``pairs``, ``resampling``) and ``bias`` (with ``timing``)
are pure numpy/scipy with no Django import; ``selectors`` reads votes from the database and feeds
them in; ``flags`` reads the skipped-with-a-reason items for the admins' flags page and API.
"""
