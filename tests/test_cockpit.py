"""The terminal cockpit renders every terminal panel from the shared definitions, on simulated data."""
from __future__ import annotations

import threading

import clickhouse_connect
import pytest
from rich.console import Console

from dashboards import cockpit
from dashboards.macros import ALL, QueryContext
from dashboards.panels import PANELS, by_key
from tests.simulated import sim_database


@pytest.fixture(scope="module")
def client(stack_env):
    return sim_database("cockpit_sim", 30_000)


def _text(renderable) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.mark.integration
def test_render_shows_every_terminal_panel(client):
    text = _text(cockpit.render(client))
    for p in PANELS:
        assert (p.title in text) == p.in_terminal, p.title
    assert "12345热线" in text and "张店区" in text
    assert "Exception" not in text and "Code:" not in text


@pytest.mark.integration
def test_render_names_every_level_and_way_in(client):
    """Open cases at each of the five levels, and by how they came in, in the control room's words."""
    text = _text(cockpit.render(client))
    for words in ("网格级", "社区级", "街道级", "区县级", "市级", "签收超时", "区县", "市民", "网格员主动发现",
                  "随手拍·网格员主动发现"):
        assert words in text, words
    assert "未记录" not in text and "未定级" not in text


@pytest.mark.integration
def test_render_for_one_district(client):
    text = _text(cockpit.render(client, QueryContext.last(cockpit.SPAN, district="370304", street=ALL)))
    assert "博山区" in text


@pytest.mark.integration
def test_a_failing_panel_shows_its_error_and_the_rest_still_renders(stack_env):
    from cityops.settings import get_settings
    from cityops.warehouse import connect

    connect(get_settings()).command("CREATE DATABASE IF NOT EXISTS cockpit_empty")   # no tables at all
    empty = clickhouse_connect.get_client(dsn=get_settings().warehouse_url, database="cockpit_empty")
    text = _text(cockpit.render(empty))
    assert "今日受理" in text and "Unknown table" in text


@pytest.mark.parametrize("value, unit, expected", [
    (0.9531, "percentunit", "95.3%"), (1234, "suffix:件", "1,234件"), (None, "suffix:件", "—"), (2.5, "mg/m³", "2.5 mg/m³"),
])
def test_units(value, unit, expected):
    assert cockpit.fmt(value, unit) == expected


def test_threshold_colours():
    p = by_key("on_time_rate")
    assert [cockpit.colour(p, v) for v in (0.5, 0.9, 0.99, None)] == ["red", "dark_orange", "green", "red"]


@pytest.mark.integration
def test_run_redraws_until_stopped(client):
    stop, frames = threading.Event(), []

    def ctx():
        frames.append(1)
        if len(frames) >= 3:
            stop.set()
        return QueryContext.last(cockpit.SPAN, district=ALL, street=ALL)

    t = threading.Thread(target=cockpit.run, args=(client, stop, 0.01),
                         kwargs={"console": Console(file=open("/dev/null", "w")), "ctx_factory": ctx})
    t.start()
    t.join(timeout=60)
    assert not t.is_alive() and len(frames) >= 3
