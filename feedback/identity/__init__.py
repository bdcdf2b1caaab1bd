"""Identity leaks (issue 15 item 4): responses that say which model wrote them.

Admins keep a list of identity words and patterns (``IdentityPattern``: global, or for one model's
completions). A comparison is flagged (``Comparison.identity_leak``) when a response matches an
active pattern, at creation (``services.comparisons_identity_flag``, called by every path that
creates comparisons) and again whenever the list changes (``services.identity_rescan_request``, a
background scan with progress on an ``IdentityScan`` row), or when an annotator skips it with the
reason "reveals which model wrote it" (``identity_leak_annotator``). Votes on flagged comparisons
are left out of the leaderboard by default. Pure matching lives in ``matcher`` (no Django).
"""
