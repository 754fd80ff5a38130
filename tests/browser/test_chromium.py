"""The browser the dashboard and report tests use is really there and really renders."""

import pytest

pytestmark = pytest.mark.browser


def test_chromium_renders_an_svg_and_runs_script(browser):
    page = browser.new_page()
    page.set_content('<svg id="chart" width="40" height="20"><rect class="bar" width="10" height="5"/></svg>'
                     '<p id="out"></p><script>document.getElementById("out").textContent = 6 * 7;</script>')
    assert page.locator("#chart .bar").count() == 1
    assert page.text_content("#out") == "42"
    page.close()
