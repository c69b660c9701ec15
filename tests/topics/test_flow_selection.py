"""``--flows`` globs: inclusion, ``!`` exclusion (a deployment's long flows in a worker of their own), typos."""

from __future__ import annotations

import fnmatch

import pytest

from topics.flows import FLOWS, UnknownFlow, select_flows

LONG = ["fetch_*_csv", "refresh_yt_posts_by_search"]


def _names(selection) -> set[str]:
    return {spec.name for spec in (*selection.enabled, *selection.disabled)}


def test_exclusions_split_the_catalogue_into_two_workers_without_overlap():
    long_flows = _names(select_flows(LONG))
    the_rest = _names(select_flows([f"!{glob}" for glob in LONG]))
    assert long_flows and the_rest
    assert long_flows.isdisjoint(the_rest)
    assert long_flows | the_rest == set(FLOWS)
    assert all(any(fnmatch.fnmatchcase(name, glob) for glob in LONG) for name in long_flows)


def test_an_exclusion_applies_to_the_included_globs_too():
    assert _names(select_flows(["refresh_*", "!refresh_yt_*"])) == {
        name for name in FLOWS if name.startswith("refresh_") and not name.startswith("refresh_yt_")
    }


@pytest.mark.parametrize("globs", [["no_such_flow*"], ["!no_such_flow*"]])
def test_a_glob_that_matches_nothing_is_refused(globs):
    with pytest.raises(UnknownFlow, match="matches no flow"):
        select_flows(globs)
