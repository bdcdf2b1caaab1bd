"""Campaigns: named annotation efforts with their own guidelines, annotator pool, comparisons,
questions, status and target. Every comparison belongs to exactly one campaign (migration 0012
put the existing ones in "Default")."""
