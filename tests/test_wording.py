"""config.wording.counted: a count and the noun that agrees with it."""
from config.wording import counted


def test_counted_says_one_in_the_singular_and_every_other_count_in_the_plural():
    assert [counted(n, "row") for n in (0, 1, 2, 1600)] == ["0 rows", "1 row", "2 rows", "1600 rows"]
    assert counted(1, "reply", "replies") == "1 reply" and counted(3, "reply", "replies") == "3 replies"
