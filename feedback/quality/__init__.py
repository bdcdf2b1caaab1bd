"""Annotation quality: agreement between annotators and the annotators' flags on items (more to
come: gold items, bias flags).

``agreement`` and the modules it uses (``labels``, ``alpha``, ``pairs``, ``resampling``) are pure
numpy/scipy with no Django import; ``selectors`` reads votes from the database and feeds them in;
``flags`` reads the skipped-with-a-reason items for the admins' flags page and API.
"""
