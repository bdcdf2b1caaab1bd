"""Quality signals on the collected data: the annotators' flags on items (skip reasons) for now."""
