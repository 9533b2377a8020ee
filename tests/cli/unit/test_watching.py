"""The folder watcher's core (cli.watching.Settling): a file is taken only once it stopped
changing for the settle time, once, and again only if it changes; the format from the folder."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from settlewatch.cli.watching import Settling, folder_format

SETTLE = 2.0
# A writer's history: at each poll (a second apart) the file grew by so many bytes (0: a pause).
Growth = st.lists(st.integers(0, 3), min_size=1, max_size=30)


@given(Growth)
def test_a_file_is_taken_when_it_held_still_for_the_settle_time_and_last_whole(
    growth: list[int],
) -> None:
    settling = Settling(settle=SETTLE)
    size, last_change, taken = 0, 0.0, []
    for t, grew in enumerate(growth + [0] * 5):  # then the writer is done
        if grew:
            size, last_change = size + grew, float(t)
        for name in settling.ready({"f.xml": (size, int(last_change))}, float(t)):
            assert t - last_change >= SETTLE  # never while it may still be written
            settling.taken(name)
            taken.append(size)
    assert 0 not in taken  # an empty file is one being created, never a bank's file
    assert len(taken) == len(set(taken))  # the same bytes never twice
    # A writer that paused longer than the settle time may have a part taken (recon rejects
    # it, or it is the whole file); the file as the writer left it is always taken, last.
    assert taken[-1:] == ([size] if size else [])


def test_a_file_let_go_is_ready_again_and_one_that_changes_after_it_was_taken_is_too() -> None:
    settling = Settling(settle=SETTLE)
    listing = {"a.csv": (10, 1)}
    assert settling.ready(listing, 0.0) == []
    assert settling.ready(listing, 1.0) == []
    assert settling.ready(listing, 2.0) == ["a.csv"]
    settling.taken("a.csv")
    assert settling.ready(listing, 3.0) == []
    settling.retry("a.csv")  # recon could not take it: it stays, and is tried again
    assert settling.ready(listing, 4.0) == ["a.csv"]
    settling.taken("a.csv")
    rewritten = {"a.csv": (12, 5)}  # dropped again under the same name, new bytes
    assert settling.ready(rewritten, 5.0) == []
    assert settling.ready(rewritten, 7.0) == ["a.csv"]
    assert settling.ready({}, 8.0) == []  # gone: forgotten


def test_the_format_comes_from_the_command_the_folders_patterns_or_the_file() -> None:
    config = {"formats": {"*.csv": "csv:bank", "*.xml": "auto"}, "format": "mt940"}
    assert folder_format(config, "icbc-20261204.csv", "auto") == "csv:bank"
    assert folder_format(config, "stmt.xml", "auto") == "auto"
    assert folder_format(config, "stmt.sta", "auto") == "mt940"
    assert folder_format(config, "icbc.csv", "adyen") == "adyen"  # the command's, given
    assert folder_format({}, "anything", "auto") == "auto"
