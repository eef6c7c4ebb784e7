"""A real browser on the UI the test serves: headless Chromium opens the partitions page of
`deliveries/ios_feed` after the backfill, the rendered page must name the asset and the
backfilled day with the numbers delivery recorded, and the screenshot is kept as a test artifact
(`test-artifacts/production/deliveries_ios_feed_partitions.png`)."""

import re
from urllib.parse import quote

import pytest

from nami_pipelines_tests.production.browser import (
    WINDOW,
    png_size_and_colors,
    rendered_dom,
    screenshot,
)
from nami_pipelines_tests.production.conftest import BackfillOutcome
from nami_pipelines_tests.production.stack import ARTIFACTS, ProductionStack, deliveries_asset

ASSET = deliveries_asset("ios_feed")
SCREENSHOT = ARTIFACTS / "deliveries_ios_feed_partitions.png"
RENDERED_DOM = ARTIFACTS / "deliveries_ios_feed_partitions.html"
# The UI draws text, icons, status colours and anti-aliasing: hundreds of colours. A blank page,
# an error page or a bare spinner has a handful.
MINIMUM_COLOURS = 50

# With `--dist loadgroup`, xdist keeps this package's tests on one worker (one stack).
pytestmark = pytest.mark.xdist_group("production_stack")


def test_partitions_page_shows_the_delivered_partitions(
    chromium: str, dagster_stack: ProductionStack, backfill: BackfillOutcome
) -> None:
    stack = dagster_stack
    stack.graphql.dismiss_community_dialog()
    day = backfill.days[-1].isoformat()
    partition = day
    url = f"{stack.url}/assets/{'/'.join(ASSET)}?view=partitions&partition={quote(day, safe='')}"

    dom = rendered_dom(url)
    RENDERED_DOM.parent.mkdir(parents=True, exist_ok=True)
    RENDERED_DOM.write_text(dom)  # kept beside the screenshot, for when an assertion fails
    assert "deliveries" in dom and "ios_feed" in dom, dom[-3000:]
    assert day in dom
    # The focused partition's materialization, with the numbers delivery recorded.
    assert "Materialized" in dom
    latest = stack.graphql.materialization_metadata(ASSET, [partition])[partition]
    for label in ("selected", "accepted", "skipped", "already_sent"):
        shown = metadata_cell(dom, label)
        assert shown == str(latest[label]), (label, shown, latest)
    assert "Join the Dagster community" not in dom

    screenshot(url, SCREENSHOT)
    width, height, colours = png_size_and_colors(SCREENSHOT)
    assert (width, height) == WINDOW
    assert colours >= MINIMUM_COLOURS, f"{SCREENSHOT} looks blank ({colours} colours)"


def metadata_cell(dom: str, label: str) -> str | None:
    """The value the metadata table shows beside `label` (the first table cell after it)."""
    match = re.search(
        rf">\s*{re.escape(label)}\s*<.*?<td[^>]*>(?:\s*<[^>]+>)*\s*([^<]*?)\s*<", dom, re.DOTALL
    )
    return match.group(1) if match else None
